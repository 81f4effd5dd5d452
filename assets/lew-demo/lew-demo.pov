// lew-demo.pov - the demo scene of lew, written for the project.
//
// The lew pipeline as glossy toys on a checkered table, left to right:
//   an S3 bucket with a scene dropping in, the launcher (a ring with a bolt), the SQS queue (job
//   cubes on a rail), the worker (a chrome sphere) and the rendered picture in a frame.
// Checkered studio floor, gradient backdrop, one area light.
// Standard includes only. Rendered by lew-demo.ini (640x360) or lew-demo-large.ini (1920x1080).

#version 3.7;
#include "colors.inc"
#include "finish.inc"
#include "metals.inc"

global_settings {
  assumed_gamma 1.0
  max_trace_level 8
}

// ----------------------------------------------------------------------------------------------
// Camera, lights, sky

camera {
  location <0.3, 2.6, -7.8>
  look_at <0.3, 1.05, 0.8>
  right x * image_width / image_height
  angle 66
}

// A soft key light from the upper left, and a dim fill without shadows.
light_source {
  <-6, 10, -7>
  color rgb <1.0, 0.96, 0.9> * 1.1
  area_light <2.4, 0, 0>, <0, 0, 2.4>, 5, 5
  adaptive 1
  circular
  orient
}
light_source { <8, 6, -10> color rgb <0.55, 0.6, 0.7> * 0.45 shadowless }

sky_sphere {
  pigment {
    gradient y
    color_map {
      [0.0 color rgb <0.80, 0.86, 0.95>]
      [0.5 color rgb <0.35, 0.50, 0.78>]
      [1.0 color rgb <0.18, 0.28, 0.55>]
    }
    scale 2
    translate -1
  }
}

// ----------------------------------------------------------------------------------------------
// Materials

#declare Gloss = finish {
  ambient 0
  diffuse 0.75
  specular 0.6
  roughness 0.004
  reflection { 0.06, 0.18 fresnel on }
  conserve_energy
}

#declare BucketBlue = texture { pigment { color rgb <0.10, 0.35, 0.85> } finish { Gloss } }
#declare LauncherOrange = texture { pigment { color rgb <1.00, 0.45, 0.05> } finish { Gloss } }
#declare QueueGreen = texture { pigment { color rgb <0.15, 0.75, 0.35> } finish { Gloss } }
#declare RailGrey = texture { pigment { color rgb 0.55 } finish { Gloss } }
#declare Chrome = texture {
  pigment { color rgb <0.85, 0.87, 0.9> }
  finish { ambient 0 diffuse 0.1 specular 0.8 roughness 0.002 reflection { 0.75 metallic } }
}

// ----------------------------------------------------------------------------------------------
// The studio: a checkered floor up to a backdrop wall (no horizon to shimmer)

plane {
  z, 9
  pigment {
    gradient y
    color_map {
      [0.0 color rgb <0.86, 0.89, 0.95>]
      [1.0 color rgb <0.30, 0.42, 0.70>]
    }
    scale 7
  }
  finish { ambient 0.15 diffuse 0.7 }
}

plane {
  y, 0
  texture {
    pigment { checker color rgb 0.92 color rgb 0.22 scale 0.8 }
    finish { ambient 0 diffuse 0.8 specular 0.2 reflection { 0.02, 0.12 fresnel on } }
  }
  interior { ior 1.5 }
}

// ----------------------------------------------------------------------------------------------
// 1. The bucket, with a scene zip (a little box) dropping in

#declare Bucket = union {
  difference {
    cone { <0, 0, 0>, 0.62, <0, 1.25, 0>, 0.8 }
    cone { <0, 0.08, 0>, 0.54, <0, 1.3, 0>, 0.72 }
  }
  torus { 0.76, 0.05 translate y * 1.25 }
  texture { BucketBlue }
}

object { Bucket translate <-4.1, 0, 1.0> }
box {
  <-0.22, -0.16, -0.22>, <0.22, 0.16, 0.22>
  texture { pigment { color rgb <0.98, 0.82, 0.2> } finish { Gloss } }
  rotate <18, 30, 12>
  translate <-4.1, 1.8, 1.0>
}

// ----------------------------------------------------------------------------------------------
// 2. The launcher: a standing ring with a lightning-bolt prism through it

union {
  torus { 0.55, 0.11 rotate x * 90 }
  prism {
    linear_sweep linear_spline -0.06, 0.06, 7,
    <-0.12, 0.42>, <0.22, 0.42>, <0.04, 0.06>, <0.2, 0.06>, <-0.16, -0.42>, <-0.02, -0.04>,
    <-0.12, 0.42>
    rotate x * -90
  }
  texture { LauncherOrange }
  rotate y * -20
  translate <-2.2, 0.72, 0.2>
}
cylinder { <-2.2, 0, 0.2>, <-2.2, 0.18, 0.2>, 0.35 texture { RailGrey } }

// ----------------------------------------------------------------------------------------------
// 3. The queue: job cubes waiting on a rail

cylinder { <-1.2, 0.12, -0.2>, <1.6, 0.12, -0.2>, 0.05 texture { RailGrey } }
cylinder { <-1.2, 0.12, 0.3>, <1.6, 0.12, 0.3>, 0.05 texture { RailGrey } }
#for (I, 0, 3)
  superellipsoid {
    <0.25, 0.25>
    scale 0.27
    texture { QueueGreen }
    rotate y * (8 * I - 10)
    translate <-0.9 + I * 0.78, 0.44, 0.05>
  }
#end

// ----------------------------------------------------------------------------------------------
// 4. The worker: a chrome sphere on a short pedestal

sphere { <2.7, 1.15, 0.4>, 0.95 texture { Chrome } }
cylinder { <2.7, 0, 0.4>, <2.7, 0.3, 0.4>, 0.5 texture { RailGrey } }

// ----------------------------------------------------------------------------------------------
// 5. The result: a framed picture of a red sphere, leaning back a little

#declare Picture = union {
  difference {
    box { <-0.8, -0.6, -0.05>, <0.8, 0.6, 0.05> }
    box { <-0.68, -0.48, -0.1>, <0.68, 0.48, 0.0> }
  }
  box {
    <-0.68, -0.48, -0.02>, <0.68, 0.48, 0.04>
    pigment {
      spherical
      color_map {
        [0.00 color rgb <0.25, 0.28, 0.35>]
        [0.45 color rgb <0.25, 0.28, 0.35>]
        [0.46 color rgb <0.55, 0.06, 0.05>]
        [1.00 color rgb <1.00, 0.45, 0.35>]
      }
      scale 0.38
      translate <0.08, 0.1, 0>
    }
    finish { ambient 0.25 diffuse 0.6 }
  }
  texture { pigment { color rgb <0.95, 0.93, 0.88> } finish { Gloss } }
}
object { Picture rotate <-12, -28, 0> translate <4.35, 0.62, 0.3> }

// ----------------------------------------------------------------------------------------------
// The name, in brushed gold behind it all

text {
  ttf "timrom.ttf" "lew" 0.25, 0
  texture { T_Gold_3C }
  scale 2.4
  translate <-1.55, 0, 3.2>
}
