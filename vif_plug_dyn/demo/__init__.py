"""The demo: the library's main job, told as a story on real kernel
objects in private network namespaces (``python -m vif_plug_dyn.demo``)."""
