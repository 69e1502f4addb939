# Sphinx configuration for the vif_plug_dyn documentation.

extensions = [
    'sphinx.ext.autodoc',
    'sphinx.ext.viewcode',
    'openstackdocstheme',
    'oslo_config.sphinxext',
]

openstackdocs_repo_name = 'openstack/vif_plug_dyn'
openstackdocs_use_storyboard = False
openstackdocs_auto_name = False
openstackdocs_bug_project = 'vif_plug_dyn'
openstackdocs_bug_tag = ''

project = 'vif_plug_dyn'
copyright = '2026, vif_plug_dyn developers'
master_doc = 'index'
exclude_patterns = ['_build']
pygments_style = 'native'
html_theme = 'openstackdocs'
autodoc_member_order = 'bysource'
autodoc_typehints = 'description'
# NOTE(vpd): dataclass fields are documented through :ivar: in the class
# docstring; autodoc would list them a second time.
autodoc_default_options = {'members': True, 'undoc-members': False}
nitpicky = False
# NOTE(vpd): dataclass fields named 'type' exist on several classes; an
# ambiguous cross-reference from a signature is not a documentation bug.
suppress_warnings = ['ref.python']
