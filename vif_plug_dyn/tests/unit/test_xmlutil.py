"""The faithful XML writer and the document parser."""

import xml.etree.ElementTree as ET

import pytest

from vif_plug_dyn import xmlutil


def round_trip(text):
    return xmlutil.parse_document(text).to_string()


@pytest.mark.parametrize('text', [
    "<a/>",
    "<a x='{not-a-namespace}'>{text}<b y='1'/></a>",
    "<a x='1'><b>t &amp; &lt;u&gt;</b>tail<c/></a>",
    "<a><!-- note --><?pi data?><b/></a>",
    "<a xmlns:n='urn:n'><n:b n:x='1'><n:c/></n:b></a>",
    "<a xmlns='urn:d'><b/></a>",
    "<a><m xmlns:n='urn:n'><n:b/></m><k xmlns:n='urn:other'><n:b/></k></a>",
    "<a x='&apos;\"&#10;&#9;&#13;&lt;&gt;&amp;'/>",
])
def test_documents_come_back_unchanged(text):
    assert round_trip(text) == text


def test_prefix_redeclared_for_another_uri():
    text = ("<a xmlns:p='urn:1'><b xmlns:p='urn:2'><p:c/></b><p:d/></a>")
    assert round_trip(text) == text
    doc = xmlutil.parse_document(text)
    # an element of urn:1 moved under <b> must not be written as p:
    inner = doc.root.find('b')
    inner.append(ET.Element('{urn:1}e'))
    out = doc.to_string()
    reparsed = ET.fromstring(out)
    assert reparsed.find('b').find('{urn:1}e') is not None


def test_undeclared_namespace_gets_a_prefix():
    element = ET.Element('a')
    ET.SubElement(element, '{urn:x}b', {'{urn:y}c': '1'})
    out = xmlutil.tostring(element)
    reparsed = ET.fromstring(out)
    assert reparsed.find('{urn:x}b').get('{urn:y}c') == '1'


def test_generated_prefix_avoids_declared_ones():
    doc = xmlutil.parse_document("<a xmlns:ns1='urn:taken'><ns1:b/></a>")
    doc.root.append(ET.Element('{urn:new}c'))
    reparsed = ET.fromstring(doc.to_string())
    assert reparsed.find('{urn:taken}b') is not None
    assert reparsed.find('{urn:new}c') is not None


def test_namespaced_attribute_under_default_namespace():
    doc = xmlutil.parse_document("<a xmlns='urn:d'><b/></a>")
    doc.root[0].set('{urn:d}x', '1')
    reparsed = ET.fromstring(doc.to_string())
    assert reparsed[0].get('{urn:d}x') == '1'


def test_xml_namespace_attribute():
    text = "<a xml:lang='en'/>"
    assert round_trip(text) == text


@pytest.mark.parametrize('text', [
    "<!DOCTYPE a [<!ENTITY e 'x'>]><a>&e;</a>",
    b"<!DOCTYPE a SYSTEM 'file:///etc/passwd'><a/>",
])
def test_dtds_are_refused(text):
    with pytest.raises(ET.ParseError):
        xmlutil.parse_document(text)
    with pytest.raises(ET.ParseError):
        xmlutil.fromstring(text)


def test_matches_etree_for_plain_documents():
    text = ("<domain type='kvm'><name>x</name><devices><interface "
            "type='bridge'><mac address='52:54:00:00:00:01'/></interface>"
            "</devices></domain>")
    ours = xmlutil.tostring(ET.fromstring(text))
    assert ET.canonicalize(ours) == ET.canonicalize(text)
