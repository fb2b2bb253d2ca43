"""Small but complete VOResource 1.1 records for the registry tests.

They have the shape the record builders give this site's resources: the TAP
service (vs:CatalogService with a TAPRegExt capability and a tableset), the SSA
service (vs:CatalogService with an ssa:SimpleSpectralAccess capability) and the
spectra collection (vs:DataCollection served by both), with curation, subjects,
rights and relationships; their access URLs point at ``base``.
"""

from __future__ import annotations

from datetime import UTC, datetime

from vo_service.registry.record import ACTIVE, DELETED, ResourceRecord

AUTHORITY = "ivo://latentvo.example"
CREATED = datetime(2026, 12, 1, 10, 0, 0, tzinfo=UTC)
UPDATED = datetime(2026, 12, 7, 4, 0, 0, tzinfo=UTC)

NAMESPACES = (
    'xmlns:ri="http://www.ivoa.net/xml/RegistryInterface/v1.0" '
    'xmlns:vr="http://www.ivoa.net/xml/VOResource/v1.0" '
    'xmlns:vs="http://www.ivoa.net/xml/VODataService/v1.1" '
    'xmlns:tr="http://www.ivoa.net/xml/TAPRegExt/v1.0" '
    'xmlns:ssa="http://www.ivoa.net/xml/SSA/v1.1" '
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"')

CURATION = """
  <curation>
    <publisher ivo-id="ivo://latentvo.example/org">Latentvo Test Archive</publisher>
    <creator><name>Doe, J.</name><logo>https://example.org/logo.png</logo></creator>
    <creator><name ivo-id="ivo://latentvo.example/people/roe">Roe, R.</name></creator>
    <date role="Created">2026-01-02</date>
    <date role="Updated">2026-12-07T04:00:00Z</date>
    <version>1.0</version>
    <contact><name>Archive staff</name><address>1 Sky Road</address>
      <email>archive@example.org</email><telephone>+1 555 0100</telephone></contact>
  </curation>"""

RIGHTS = ('<rights rightsURI="https://spdx.org/licenses/CC-BY-4.0.html">Creative Commons '
          "Attribution 4.0 (CC-BY-4.0)</rights>")


def _resource(xsi_type: str, ivoid: str, title: str, short_name: str, body: str) -> str:
    stamp = "%Y-%m-%dT%H:%M:%SZ"
    return (f'<ri:Resource {NAMESPACES} xsi:type="{xsi_type}" '
            f'created="{CREATED.strftime(stamp)}" updated="{UPDATED.strftime(stamp)}" '
            f'status="active"><title>{title}</title><shortName>{short_name}</shortName>'
            f"<identifier>{ivoid}</identifier>{body}</ri:Resource>")


def _content(description: str, relationship: str, kind: str, related: str) -> str:
    return f"""
  <content>
    <subject>Spectroscopy</subject>
    <subject>Astronomy software</subject>
    <subject>Spectroscopy</subject>
    <description>{description}</description>
    <referenceURL>https://latentvo.example/</referenceURL>
    <type>Catalog</type>
    <contentLevel>Research</contentLevel>
    <relationship><relationshipType>{relationship}</relationshipType>
      <relatedResource ivo-id="{AUTHORITY}/{related}">{kind}</relatedResource></relationship>
  </content>"""


def tap_record(base: str) -> ResourceRecord:
    body = (
        "<altIdentifier>doi:10.5072/latentvo.tap</altIdentifier>" + CURATION
        + _content("Stellar spectra and their machine-learning products: latent vectors and "
                   "predicted labels, queried with ADQL.", "IsServiceFor", "Spectra",
                   "spectra")
        + RIGHTS + f"""
  <capability standardID="ivo://ivoa.net/std/TAP" xsi:type="tr:TableAccess">
    <interface xsi:type="vs:ParamHTTP" role="std" version="1.1">
      <accessURL use="base">{base}/tap</accessURL></interface>
    <dataModel ivo-id="ivo://ivoa.net/std/ObsCore#core-1.1">ObsCore-1.1</dataModel>
    <language><name>ADQL</name><version ivo-id="ivo://ivoa.net/std/ADQL#v2.1">2.1</version>
      <languageFeatures type="ivo://ivoa.net/std/TAPRegExt#features-udf">
        <feature><form>ivo_hasword(haystack TEXT, needle TEXT) -&gt; INTEGER</form></feature>
      </languageFeatures></language>
    <outputFormat ivo-id="ivo://ivoa.net/std/TAPRegExt#output-votable-binary2">
      <mime>application/x-votable+xml;serialization=BINARY2</mime></outputFormat>
    <uploadMethod ivo-id="ivo://ivoa.net/std/TAPRegExt#upload-inline"/>
    <retentionPeriod><default>86400</default><hard>604800</hard></retentionPeriod>
    <outputLimit><default unit="row">10000</default><hard unit="row">1000000</hard>
    </outputLimit>
  </capability>
  <capability standardID="ivo://ivoa.net/std/VOSI#capabilities">
    <interface xsi:type="vs:ParamHTTP"><accessURL use="full">{base}/tap/capabilities
    </accessURL><securityMethod standardID="ivo://ivoa.net/sso#tls-with-password"/>
    </interface></capability>
  <tableset>
    <schema><name>ivoa</name><description>IVOA data-model tables (ObsCore)</description>
      <table type="view"><name>ivoa.obscore</name>
        <description>The spectra as ObsCore 1.1 datasets</description>
        <utype>ivo://ivoa.net/std/ObsCore#table-1.1</utype><nrows>240</nrows>
        <column><name>s_ra</name><description>Right ascension</description><unit>deg</unit>
          <ucd>pos.eq.ra</ucd><utype>obscore:Char.SpatialAxis.Coverage.Location.Coordinates.Position2D.Value2.C1</utype>
          <dataType xsi:type="vs:VOTableType">double</dataType><flag>indexed</flag>
          <flag>primary</flag></column>
        <column><name>obs_publisher_did</name><description>Dataset identifier</description>
          <ucd>meta.ref.ivoid</ucd>
          <dataType xsi:type="vs:VOTableType" arraysize="*">char</dataType></column>
      </table></schema>
    <schema><name>latentvo</name><description>Spectra and latent vectors</description>
      <table type="table"><name>latentvo.latent</name><description>Latent vectors
        </description>
        <column><name>vec</name><description>Latent vector</description>
          <dataType xsi:type="vs:VOTableType" arraysize="*">float</dataType></column>
      </table></schema>
  </tableset>""")
    return ResourceRecord(f"{AUTHORITY}/tap", "vs:CatalogService", "latentvo TAP service",
                          ACTIVE, CREATED, UPDATED,
                          _resource("vs:CatalogService", f"{AUTHORITY}/tap",
                                    "latentvo TAP service", "latentvo TAP", body))


def ssa_record(base: str) -> ResourceRecord:
    body = (CURATION + _content(
        "Simple Spectral Access to the archive's spectra, with latent-space similarity "
        "links.", "IsServiceFor", "Spectra", "spectra") + RIGHTS + f"""
  <capability standardID="ivo://ivoa.net/std/SSA" xsi:type="ssa:SimpleSpectralAccess">
    <interface xsi:type="vs:ParamHTTP" role="std" version="1.1">
      <accessURL use="base">{base}/ssa?</accessURL><queryType>GET</queryType>
      <resultType>application/x-votable+xml</resultType>
      <param std="true" use="required"><name>POS</name><description>Position</description>
        <unit>deg</unit><dataType xsi:type="vs:SimpleDataType" arraysize="2">real</dataType>
      </param></interface>
    <complianceLevel>full</complianceLevel>
    <dataSource>survey</dataSource>
    <creationType>archival</creationType>
    <supportedFrame>ICRS</supportedFrame>
    <maxSearchRadius>10</maxSearchRadius>
    <maxRecords>10000</maxRecords>
    <defaultMaxRecords>1000</defaultMaxRecords>
    <maxAperture>0.001</maxAperture>
    <testQuery><pos><long>180</long><lat>0</lat></pos><size>2</size></testQuery>
  </capability>
  <coverage><waveband>Optical</waveband></coverage>""")
    return ResourceRecord(f"{AUTHORITY}/ssa", "vs:CatalogService", "latentvo SSA service",
                          ACTIVE, CREATED, UPDATED,
                          _resource("vs:CatalogService", f"{AUTHORITY}/ssa",
                                    "latentvo SSA service", "latentvo SSA", body))


def collection_record(base: str) -> ResourceRecord:
    body = (CURATION + _content("The archive's observed stellar spectra.", "IsServedBy",
                                "latentvo TAP service", "tap")
            + "<facility>Test telescope</facility><instrument>SYNTH</instrument>" + RIGHTS
            + "<format>application/fits</format>"
            + "<coverage><waveband>Optical</waveband><regionOfRegard>0.0003</regionOfRegard>"
            + f"</coverage><accessURL use=\"base\">{base}/</accessURL>")
    return ResourceRecord(f"{AUTHORITY}/spectra", "vs:DataCollection", "latentvo spectra",
                          ACTIVE, CREATED, UPDATED,
                          _resource("vs:DataCollection", f"{AUTHORITY}/spectra",
                                    "latentvo spectra", "lvo spectra", body))


def withdrawn_record() -> ResourceRecord:
    return ResourceRecord(f"{AUTHORITY}/release/dr0", "vs:DataCollection", "dr0", DELETED,
                          CREATED, UPDATED, "")


def site_records(base: str) -> list[ResourceRecord]:
    """The test site's records: TAP, SSA, the spectra collection and a withdrawn release."""
    return [tap_record(base), ssa_record(base), collection_record(base), withdrawn_record()]
