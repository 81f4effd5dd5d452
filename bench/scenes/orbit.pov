#version 3.7;
// orbit.pov (scripts/bench): lew's demo scene, its camera swinging 40 degrees around the table
// as the clock runs from 0 to 1. POV-Ray uses the last camera a scene declares (it warns that it
// ignores the demo's own).
#include "lew-demo.pov"
camera {
  location vrotate(<0, 2.6, -8.6>, <0, clock * 40 - 20, 0>) + <0.3, 0, 0.8>
  look_at <0.3, 1.05, 0.8>
  right x * image_width / image_height
  angle 66
}
