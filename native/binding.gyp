{
  "variables": {
    "hardneg_dnnl%": "<!(node -p \"process.env.HARDNEG_BUILD_DNNL === '1' ? 1 : 0\")"
  },
  "targets": [
    {
      "target_name": "hardneg_native",
      "sources": ["src/addon.cc", "src/kernels.cc", "src/knn.cc"],
      "cflags_cc": ["-std=gnu++17", "-O3", "-fno-math-errno", "-fno-trapping-math", "-Wall"],
      "libraries": ["-lopenblas"],
      "conditions": [
        [
          "hardneg_dnnl==1",
          {
            "sources": ["src/dnnl_conv.cc"],
            "defines": ["HARDNEG_DNNL"],
            "cflags_cc!": ["-fno-exceptions"],
            "cflags_cc": ["-fexceptions"],
            "libraries": ["-ldnnl", "-lgomp"]
          }
        ]
      ]
    }
  ]
}
