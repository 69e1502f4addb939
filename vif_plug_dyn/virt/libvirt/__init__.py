"""The libvirt hypervisor adapter.

:mod:`.config`
    one class per XML element, formatting and parsing;
:mod:`.vif`
    endpoint descriptors <-> ``<interface>`` configuration;
:mod:`.domain`
    edits of a domain document by MAC (add, replace, remove, link state,
    migration);
:mod:`.adapter`
    :class:`~.adapter.LibvirtAdapter`, the ``libvirt`` entry point of
    ``vif_plug_dyn.hypervisors``.
"""
