// The smallest UNet that still has every part (two levels, a down- and an up-sampling, attention at
// 4x4): 8 channels on 8x8 images, so a test can build, train and gradcheck it in milliseconds.
// Shared by the nn and train suites; a test sets dropout, num_classes, ... on the copy it gets.
#pragma once

#include "nn/unet.h"

namespace dd_test {

inline dd::UNetConfig tiny_unet_config(int ch = 8) {
  dd::UNetConfig c;
  c.ch = ch;
  c.ch_mult = {1, 2};
  c.attn_resolutions = {4};
  c.resolution = 8;
  return c;
}

// One level, no attention, 4x4 images: the smallest UNet there is (the checkpoint fuzz target's
// seed corpus is made with it).
inline dd::UNetConfig one_level_unet_config() {
  dd::UNetConfig c;
  c.ch = 8;
  c.ch_mult = {1};
  c.attn_resolutions = {};
  c.resolution = 4;
  return c;
}

}  // namespace dd_test
