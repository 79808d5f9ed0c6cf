"""Loading a partner mapping: a bad document fails naming the key and its YAML line; where the mapping
comes from (a file, an SSM parameter, the default)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from vercel_sync.errors import ConfigurationError
from vercel_sync.mapping import DEFAULT_MAPPING_FILE, MappingError, default_mapping, parse_mapping, read_mapping_file
from vercel_sync.settings import SyncSettings
from vercel_sync.wiring import load_partner_mapping

GOOD = """\
schemaVersion: 1
fields:
  integrationConfigurationId: {attribute: installation}
  resourceId: {attribute: id}
  productId: {constant: prod_x}
  name: {attribute: name}
  status: {attribute: state, words: {ready: [live]}}
"""


def error_of(text: str) -> str:
    with pytest.raises(MappingError) as raised:
        parse_mapping(text, "mapping.yaml")
    return str(raised.value)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("words: {ready: [live]}", "words: {readyy: [live]}"), "mapping.yaml: line 7: fields.status.words.readyy"),
        (("{constant: prod_x}", "{constant: prod_x, attribute: p}"), "line 5: fields.productId: Value error"),
        (("  name: {attribute: name}\n", ""), "line 2: fields.name: Field required"),
        (("  name: {attribute: name}", "  name: {attribute: name}\n  colour: {constant: x}"), "line 7: fields.colour"),
        (("schemaVersion: 1", "schemaVersion: 2"), "line 1: schemaVersion: Input should be 1"),
        (("{attribute: id}", "{attribute: id, words: {ready: [x]}}"), "line 4: fields.resourceId.words: Extra"),
        (("{attribute: id}", "{template: '{a}-{b}'}"), "line 4: fields.resourceId.template: Extra inputs"),
        (("{attribute: id}", "{attribute: 'a..b'}"), "line 4: fields.resourceId.attribute: String should match"),
    ],
)  # fmt: skip
def test_an_error_names_the_key_and_its_line(change: tuple[str, str], expected: str) -> None:
    message = error_of(GOOD.replace(*change))
    assert expected in message


def test_conditions_name_their_place_in_the_list() -> None:
    text = GOOD + "resources:\n  - {attribute: type, equals: DB}\n  - {attribute: pk, beginsWith: RES}\n"
    assert "line 10: resources.1.beginsWith: Extra inputs are not permitted" in error_of(text)


def test_not_yaml_names_the_line() -> None:
    assert error_of(GOOD + "  broken: [unclosed\n").startswith("mapping.yaml: line ")


def test_not_a_mapping() -> None:
    assert "the mapping must be a YAML mapping" in error_of("- just a list\n")


def test_a_missing_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(MappingError, match=r"nowhere\.yaml: cannot be read"):
        read_mapping_file(tmp_path / "nowhere.yaml")


def test_a_bad_mapping_is_a_configuration_error() -> None:
    assert issubclass(MappingError, ConfigurationError)


def test_the_default_mapping_ships_beside_the_engine() -> None:
    assert DEFAULT_MAPPING_FILE.name == "default.yaml"
    assert DEFAULT_MAPPING_FILE.parent.name == "mapping"
    assert default_mapping().origin == str(DEFAULT_MAPPING_FILE)


class FakeSsm:
    """The one SSM call Powertools Parameters makes for a plain parameter."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.names: list[str] = []

    def get_parameter(self, Name: str, **_: Any) -> dict[str, Any]:  # boto3's argument name
        self.names.append(Name)
        return {"Parameter": {"Name": Name, "Value": self.text}}


class FakeAws:
    def __init__(self, ssm: FakeSsm) -> None:
        self.ssm = ssm

    def tier_client(self, service: str, tier: int) -> FakeSsm:
        assert service == "ssm"
        return self.ssm


def settings(**environ: str) -> SyncSettings:
    return SyncSettings.from_env({"FAILED_RECORDS_QUEUE_URL": "http://q", **environ})


def test_the_mapping_file_first(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(GOOD)
    ssm = FakeSsm("not used")
    mapping = load_partner_mapping(
        settings(PARTNER_MAPPING_FILE=str(path), PARTNER_MAPPING_PARAMETER="/p"),
        FakeAws(ssm),  # type: ignore[arg-type]
    )
    assert mapping.origin == str(path)
    assert ssm.names == []


def test_then_the_ssm_parameter_then_the_default() -> None:
    ssm = FakeSsm(GOOD)
    mapping = load_partner_mapping(settings(PARTNER_MAPPING_PARAMETER="/vrs/mapping"), FakeAws(ssm))  # type: ignore[arg-type]
    assert mapping.status_table["live"] == "ready"
    assert ssm.names == ["/vrs/mapping"]
    assert load_partner_mapping(settings(), FakeAws(FakeSsm(""))) is default_mapping()  # type: ignore[arg-type]


def test_a_bad_parameter_names_the_parameter_and_the_line() -> None:
    ssm = FakeSsm(GOOD.replace("schemaVersion: 1", "schemaVersion: 9"))
    with pytest.raises(MappingError, match="SSM parameter /vrs/mapping: line 1: schemaVersion"):
        load_partner_mapping(settings(PARTNER_MAPPING_PARAMETER="/vrs/mapping"), FakeAws(ssm))  # type: ignore[arg-type]


def test_an_unreadable_parameter_is_a_configuration_error_naming_it() -> None:
    class Refusing(FakeSsm):
        def get_parameter(self, Name: str, **_: Any) -> dict[str, Any]:  # boto3's argument name
            raise PermissionError("AccessDenied")

    with pytest.raises(ConfigurationError, match="SSM parameter /vrs/mapping: cannot be read"):
        load_partner_mapping(settings(PARTNER_MAPPING_PARAMETER="/vrs/mapping"), FakeAws(Refusing("")))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("removal:\n  - {flag: d, x: 1}\n", "line 9: removal.0.x: Extra inputs are not permitted"),
        ("  metadata: {attributes: {Zone: {attribute: r, type: x}}}\n", "line 8: fields.metadata.attributes.Zone.type"),
        ("  billingPlan: {attribute: p, plans: {Pro: {id: p, type: x, name: P}}}\n", "billingPlan.plans.Pro.type"),
    ],
)  # fmt: skip
def test_an_error_inside_a_form_names_the_documents_own_keys(extra: str, expected: str) -> None:
    message = error_of(GOOD + extra)
    assert expected in message
    assert len(message.splitlines()) == 1  # the form's own error only, not the other forms'
    assert "line 8" in message or "line 9" in message


# ---------------------------------------------------------------- hostile documents


def test_python_tags_are_refused_never_run() -> None:
    assert "could not determine a constructor" in error_of(GOOD + "extras: !!python/object/apply:os.system [true]\n")


def test_a_key_given_twice_is_refused_naming_it_and_its_line() -> None:
    text = GOOD.replace(
        "  productId: {constant: prod_x}\n", "  productId: {constant: prod_x}\n  productId: {constant: y}\n"
    )
    assert error_of(text) == "mapping.yaml: line 6: fields.productId: given twice (first on line 5)"


def test_anchors_and_aliases_are_refused() -> None:
    """A billion-laughs document would otherwise expand into every payload of a constant that holds it."""
    bomb = "\n".join(f"l{n}: &l{n} [" + ",".join([f"*l{n - 1}"] * 9) + "]" for n in range(1, 9))
    text = GOOD.replace("  productId: {constant: prod_x}", "  productId: {constant: &l0 x}") + "extras:\n  " + bomb
    assert "anchors and aliases" in error_of(text)
    assert "line 5" in error_of(GOOD.replace("{constant: prod_x}", "&p {constant: prod_x}") + "x: *p\n")


def test_a_huge_document_is_refused_before_it_is_parsed() -> None:
    assert "larger than" in error_of(GOOD + "#" + "x" * 2_000_000 + "\n")


def test_a_word_for_two_statuses_is_refused() -> None:
    text = GOOD.replace("words: {ready: [live]}", "words: {ready: [live], error: [Live]}")
    assert "line 7: fields.status.words: Value error, 'Live' means ready and error" in error_of(text)


def test_a_vercel_status_word_cannot_mean_another_status() -> None:
    text = GOOD.replace("words: {ready: [live]}", "words: {error: [ready]}")
    assert "fields.status.words: Value error, 'ready' is Vercel's own status ready: it cannot mean error" in error_of(
        text
    )


def test_an_empty_word_is_refused() -> None:
    assert "fields.status.words: Value error, an empty word under ready" in error_of(
        GOOD.replace("[live]", "[live, ' ']")
    )


@pytest.mark.parametrize("template", ["{a..b}", "{}x{.a}", "{a.}"])
def test_a_template_placeholder_must_be_an_attribute_path(template: str) -> None:
    text = GOOD.replace("name: {attribute: name}", f"name: {{template: '{template}'}}")
    assert "line 6: fields.name.template: Value error, a template's placeholder must be an attribute path" in error_of(
        text
    )


def test_format_string_tricks_in_a_template_are_attribute_names_never_evaluated() -> None:
    from vercel_sync.errors import InvalidRecordError
    from vercel_sync.transform import parse_partner_record

    mapping = parse_mapping(
        GOOD.replace("name: {attribute: name}", "name: {template: '{0.__class__}{x!r:>99999}'}"), "m"
    )
    item = {"installation": "icfg_1", "id": "r", "state": "live"}
    with pytest.raises(InvalidRecordError, match=r"the template.s attribute .0\.__class__. is missing"):
        parse_partner_record(item, mapping=mapping)
    named = parse_partner_record({**item, "0": {"__class__": "a"}, "x!r:>99999": "b"}, mapping=mapping)
    assert named.name == "ab"


def test_a_file_that_is_not_utf8_text_is_a_mapping_error(tmp_path: Path) -> None:
    path = tmp_path / "mapping.yaml"
    path.write_bytes(b"\xff\xfeschemaVersion: 1\n")
    with pytest.raises(MappingError, match="not UTF-8 text"):
        read_mapping_file(path)


def test_an_empty_metadata_key_is_refused_at_load() -> None:
    text = GOOD + "  metadata: {attributes: {'': region}}\n"
    assert "line 8: fields.metadata.attributes..[key]: String should have at least 1 character" in error_of(text)
