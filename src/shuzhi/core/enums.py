"""Domain enumerations shared by every package: an English code and its Chinese label."""

from __future__ import annotations

from enum import StrEnum

from shuzhi.core.errors import Message, ValidationFailed


class LabeledEnum(StrEnum):
    """A code stored and spoken in English, shown in Chinese (or English) to people."""

    zh: str
    en: str

    def __new__(cls, value: str, zh: str = "", en: str = "") -> LabeledEnum:
        member = str.__new__(cls, value)
        member._value_ = value
        member.zh = zh or value
        member.en = en or value.replace("_", " ")
        return member

    def label(self, locale: str = "zh-CN") -> str:
        return self.zh if locale.startswith("zh") else self.en

    @classmethod
    def label_of(cls, code: str, locale: str = "zh-CN") -> str:
        """The label of a code, or the code itself when it is not one of these."""
        known = cls._value2member_map_.get(code)
        return known.label(locale) if isinstance(known, LabeledEnum) else code

    @classmethod
    def choices(cls) -> str:
        return ", ".join(member.value for member in cls)

    @classmethod
    def check(cls, value: str, *, name: str) -> None:
        """Refuse a code that is not one of these, naming the ``name`` it was given as."""
        if value not in cls._value2member_map_:
            raise ValidationFailed(
                Message(
                    "unknown {name} {value!r}; one of {choices}",
                    name=name,
                    value=value,
                    choices=cls.choices(),
                ),
                field=name,
            )


class System(LabeledEnum):
    """The six systems of the 1612 architecture, plus grassroots governance."""

    party_building = (
        "party_building",
        "党建统领整体智治",
        "Party-building-led holistic governance",
    )
    digital_government = ("digital_government", "数字政府", "Digital government")
    digital_economy = ("digital_economy", "数字经济", "Digital economy")
    digital_society = ("digital_society", "数字社会", "Digital society")
    digital_culture = ("digital_culture", "数字文化", "Digital culture")
    digital_rule_of_law = ("digital_rule_of_law", "数字法治", "Digital rule of law")
    grassroots = ("grassroots", "基层治理", "Grassroots governance")


class Light(LabeledEnum):
    green = ("green", "绿", "green")
    yellow = ("yellow", "黄", "yellow")
    red = ("red", "红", "red")
    no_data = ("no_data", "无数据", "no data")
