# Sphinx configuration for the vif_plug_dyn release notes.

extensions = ['openstackdocstheme', 'reno.sphinxext']

openstackdocs_repo_name = 'openstack/vif_plug_dyn'
openstackdocs_use_storyboard = False
openstackdocs_auto_name = False
openstackdocs_bug_project = 'vif_plug_dyn'
openstackdocs_bug_tag = ''

project = 'vif_plug_dyn Release Notes'
copyright = '2026, vif_plug_dyn developers'
master_doc = 'index'
html_theme = 'openstackdocs'
exclude_patterns = ['_build']
