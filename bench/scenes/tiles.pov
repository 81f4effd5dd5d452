#version 3.7;
// tiles.pov (scripts/bench): a wall of glossy spheres filling the frame, so every row of the
// image costs about the same to render: a split of it measures lew's part, not the scene's
// balance (the demo's top rows are sky, much cheaper than its bottom ones). Deterministic: an
// area light without jitter, no radiosity.
global_settings { assumed_gamma 1.0 max_trace_level 6 }
camera {
  orthographic
  location <0, 0, -20>
  look_at <0, 0, 0>
  right x * 16
  up y * 9
}
light_source {
  <-12, 14, -20>
  color rgb 1
  area_light <3, 0, 0>, <0, 3, 0>, 4, 4
  adaptive 1
}
light_source { <10, -6, -20> color rgb 0.3 shadowless }
plane { -z, -0.6 pigment { checker color rgb 0.85 color rgb 0.15 scale 0.5 } finish { reflection 0.15 } }
#for (row, -5, 5)
  #for (col, -9, 9)
    sphere {
      <col, row, 0>, 0.48
      pigment { color rgb <0.5 + 0.5 * sin(col), 0.5 + 0.5 * cos(row), 0.6> }
      finish { specular 0.6 roughness 0.01 reflection 0.3 }
    }
  #end
#end
