"""Network drivers: build the host side of endpoints, know nothing of any
hypervisor. Each is loaded by stevedore from the entry-point namespace
:data:`vif_plug_dyn.drivers.base.NAMESPACE`."""
