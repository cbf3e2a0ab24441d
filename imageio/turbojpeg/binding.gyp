{
  "targets": [
    {
      "target_name": "turbojpeg",
      "sources": ["turbojpeg.c"],
      "libraries": ["-lturbojpeg"],
      "cflags": ["-O2", "-Wall"]
    }
  ]
}
