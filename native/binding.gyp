{
  "targets": [
    {
      "target_name": "hardneg_native",
      "sources": ["src/addon.cc", "src/kernels.cc", "src/knn.cc"],
      "cflags_cc": ["-std=gnu++17", "-O3", "-fno-math-errno", "-fno-trapping-math", "-Wall"],
      "libraries": ["-lopenblas"]
    }
  ]
}
