import pytest

from shuzhi.core.masking import mask


@pytest.mark.parametrize(
    ("value", "kind", "masked"),
    [
        ("13900001111", None, "1390***1111"),
        ("13900001111", "phone", "139****1111"),
        ("11010519491231002X", "id_card", "110105********002X"),
        ("zhang.san@example.cn", "email", "z***@example.cn"),
        ("张三丰", "name", "张**"),
        ("张三", "name", "张*"),
        ("张", "name", "张*"),
        ("浙江省杭州市上城区某路1号", "address", "浙江省杭州市上城区****"),
        ("杭州市西湖区文三路", "address", "杭州市西湖区****"),
        ("浙江省金华市义乌市稠州北路", "address", "浙江省金华市义乌市****"),
        ("淳安县千岛湖镇", "address", "淳安县****"),
        ("某路1号", "address", "****"),
        ("杭州市", "address", "***"),
        ("6222021234567890123", "bank_card", "***************0123"),
        ("张三丰", None, "***"),
        ("abcdefgh", None, "abc**fgh"),
    ],
)
def test_mask_hides_each_kind_as_government_systems_display_it(
    value: str, kind: str | None, masked: str
) -> None:
    assert mask(value, kind) == masked
