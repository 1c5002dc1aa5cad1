"""Pure parts of the OPC UA layer: type acceptance, value coercion, UNECE unit ids, compact node records."""

from __future__ import annotations

import pytest
from asyncua import ua

from scada.opcua.datatypes import accepts, converter, eu_information, unece_unit_id
from scada.opcua.nodes import INITIAL_VALUE, ObjectNode, Shape, ValueAttribute, VariableNode, constant


def v(value: object, vtype: ua.VariantType) -> ua.Variant:
    return ua.Variant(value, vtype)


def test_unece_unit_ids_follow_part_8() -> None:
    assert unece_unit_id("P1") == 0x5031
    assert unece_unit_id("KWH") == 0x4B5748
    assert unece_unit_id("A24") == 0x413234
    info = eu_information("cd/m²")
    assert (info.UnitId, info.DisplayName.Text) == (0x413234, "cd/m²")
    with pytest.raises(KeyError):
        eu_information("furlong")


@pytest.mark.parametrize(
    ("dtype", "variant", "ok"),
    [
        ("Double", v(1.5, ua.VariantType.Double), True),
        ("Double", v(1.5, ua.VariantType.Float), True),
        ("Double", v(2, ua.VariantType.Int64), True),
        ("Double", v(True, ua.VariantType.Boolean), False),
        ("Double", v("1.5", ua.VariantType.String), False),
        ("Double", v([1.0, 2.0], ua.VariantType.Double), False),
        ("Double", ua.Variant(), False),
        ("UInt16", v(3, ua.VariantType.UInt16), True),
        ("UInt16", v(3, ua.VariantType.Int64), True),
        ("UInt16", v(3.0, ua.VariantType.Double), False),
        ("Int32", v(1, ua.VariantType.Byte), True),
        ("Boolean", v(True, ua.VariantType.Boolean), True),
        ("Boolean", v(1, ua.VariantType.Int32), False),
        ("String", v("x", ua.VariantType.String), True),
        ("String", v(b"x", ua.VariantType.ByteString), False),
    ],
)
def test_accepts(dtype: str, variant: ua.Variant, ok: bool) -> None:
    assert accepts(dtype, variant) is ok


@pytest.mark.parametrize(
    ("dtype", "value", "expected"),
    [
        ("UInt16", 3.0, 3),
        ("UInt16", 65535, 65535),
        ("UInt32", 4294967295, 4294967295),
        ("Int32", -5, -5),
        ("Double", 7, 7.0),
        ("Boolean", 0, False),
        ("String", "a\nb", "a\nb"),
    ],
)
def test_converter_accepts(dtype: str, value: object, expected: object) -> None:
    result = converter(dtype)(value)
    assert result == expected and type(result) is type(expected)


@pytest.mark.parametrize(
    ("dtype", "value"),
    [
        ("UInt16", 65536),
        ("UInt16", -1),
        ("UInt32", 2.5),
        ("Int32", 2**31),
        ("Double", "1.0"),
        ("Double", None),
        ("Boolean", "yes"),
        ("String", 5),
    ],
)
def test_converter_refuses(dtype: str, value: object) -> None:
    with pytest.raises((TypeError, ValueError)):
        converter(dtype)(value)


def test_compact_nodes_behave_as_attribute_maps() -> None:
    shape = Shape({ua.AttributeIds.NodeClass: constant(2, ua.VariantType.Int32)}, ua.VariantType.Double)
    node = VariableNode(ua.NodeId("A/B", 2), [], shape, ValueAttribute(INITIAL_VALUE))
    attributes = node.attributes
    assert set(attributes) == {ua.AttributeIds.NodeId, ua.AttributeIds.Value, ua.AttributeIds.NodeClass}
    assert len(attributes) == 3
    assert ua.AttributeIds.Value in attributes and ua.AttributeIds.DataType not in attributes
    assert attributes.get(ua.AttributeIds.DataType) is None
    assert attributes[ua.AttributeIds.NodeId] is attributes[ua.AttributeIds.NodeId]  # made once, then kept
    assert attributes[ua.AttributeIds.NodeId].value.Value.Value == ua.NodeId("A/B", 2)
    with pytest.raises(TypeError):
        attributes[ua.AttributeIds.NodeClass] = constant(1, ua.VariantType.Int32)
    value = attributes[ua.AttributeIds.Value]
    assert value.datachange_callbacks == {} and value.datachange_callbacks is value.datachange_callbacks

    obj = ObjectNode(ua.NodeId("A", 2), [], shape, ua.QualifiedName("A", 2), ua.LocalizedText("A"), "the A")
    assert obj.attributes[ua.AttributeIds.BrowseName].value.Value.Value == ua.QualifiedName("A", 2)
    assert obj.attributes[ua.AttributeIds.Description].value.Value.Value == ua.LocalizedText("the A")
    assert ua.AttributeIds.Value not in obj.attributes
    plain = ObjectNode(ua.NodeId("B", 2), [], shape, ua.QualifiedName("B", 2), ua.LocalizedText("B"))
    assert ua.AttributeIds.Description not in plain.attributes
    assert len(plain.attributes) == 4  # NodeId, BrowseName, DisplayName, NodeClass
