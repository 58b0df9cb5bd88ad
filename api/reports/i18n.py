"""The report's words in English and Vietnamese, and numbers written the way each reader expects."""

from __future__ import annotations

from typing import Final, Literal

Lang = Literal["en", "vi"]
LANGS: Final[tuple[Lang, ...]] = ("en", "vi")

TEXT: Final[dict[str, dict[Lang, str]]] = {
    "title": {"en": "Mobile coverage report", "vi": "Báo cáo vùng phủ sóng di động"},
    "park": {"en": "Park", "vi": "Khu công nghiệp"},
    "period": {"en": "Period", "vi": "Kỳ báo cáo"},
    "previous": {"en": "Compared with", "vi": "So với kỳ trước"},
    "generated": {"en": "Generated", "vi": "Ngày lập"},
    "resolution": {"en": "H3 resolution", "vi": "Độ phân giải H3"},
    "s_coverage": {"en": "Coverage by operator and technology", "vi": "Vùng phủ theo nhà mạng và công nghệ"},
    "s_coverage_note": {
        "en": "Share of the measured area in each signal class (median RSRP per cell), and the change "
        "since the previous period of equal length.",
        "vi": "Tỷ lệ diện tích đã đo theo từng mức tín hiệu (RSRP trung vị mỗi ô), và thay đổi so với "
        "kỳ trước có cùng độ dài.",
    },
    "operator": {"en": "Operator", "vi": "Nhà mạng"},
    "tech": {"en": "Technology", "vi": "Công nghệ"},
    "measured_area": {"en": "Measured area", "vi": "Diện tích đã đo"},
    "park_measured": {"en": "Park measured", "vi": "Tỷ lệ khu đã đo"},
    "dead_zones": {"en": "Dead zones", "vi": "Vùng lõm sóng"},
    "dead_area": {"en": "Dead-zone area", "vi": "Diện tích lõm sóng"},
    "change": {"en": "Change", "vi": "Thay đổi"},
    "class_none": {"en": "No coverage", "vi": "Mất sóng"},
    "class_poor": {"en": "Poor", "vi": "Yếu"},
    "class_fair": {"en": "Fair", "vi": "Trung bình"},
    "class_good": {"en": "Good", "vi": "Tốt"},
    "class_excellent": {"en": "Excellent", "vi": "Rất tốt"},
    "no_data": {"en": "No measurements in this period.", "vi": "Không có số liệu đo trong kỳ này."},
    "s_zones": {"en": "Dead zones and their progress", "vi": "Vùng lõm sóng và tiến độ xử lý"},
    "s_zones_note": {
        "en": "Each zone of this period against the previous one. A zone is resolved only when new "
        "measurements show coverage in its cells; where nobody measured again it is not re-surveyed.",
        "vi": "Mỗi vùng của kỳ này so với kỳ trước. Một vùng chỉ được coi là đã xoá khi số liệu đo mới "
        "cho thấy có sóng trong các ô của nó; nơi chưa ai đo lại thì ghi là chưa đo lại.",
    },
    "no_zones": {"en": "No dead zones in either period.", "vi": "Không có vùng lõm sóng trong cả hai kỳ."},
    "status": {"en": "Status", "vi": "Trạng thái"},
    "st_new": {"en": "New", "vi": "Mới"},
    "st_persisting": {"en": "Persisting", "vi": "Vẫn còn"},
    "st_shrunk": {"en": "Shrunk", "vi": "Thu hẹp"},
    "st_grown": {"en": "Grown", "vi": "Mở rộng"},
    "st_resolved": {"en": "Resolved", "vi": "Đã xoá"},
    "st_not_resurveyed": {"en": "Not re-surveyed", "vi": "Chưa đo lại"},
    "confidence": {"en": "Confidence", "vi": "Độ tin cậy"},
    "area_before": {"en": "Area before", "vi": "Diện tích trước"},
    "area_now": {"en": "Area now", "vi": "Diện tích hiện nay"},
    "nearest_site": {"en": "Nearest site", "vi": "Trạm gần nhất"},
    "legend_now": {"en": "dead now", "vi": "lõm sóng hiện nay"},
    "legend_before": {"en": "dead before", "vi": "lõm sóng kỳ trước"},
    "legend_cleared": {"en": "shown covered now", "vi": "đã có sóng"},
    "s_gaps": {"en": "Survey gaps", "vi": "Khu vực chưa khảo sát"},
    "s_gaps_note": {
        "en": "Cells of the park without any measurement in this period: their coverage is unknown.",
        "vi": "Các ô trong khu chưa có số liệu đo nào trong kỳ này: chưa biết vùng phủ tại đó.",
    },
    "gap_area": {"en": "Unmeasured area", "vi": "Diện tích chưa đo"},
    "gap_share": {"en": "Share of the park", "vi": "Tỷ lệ trên diện tích khu"},
    "no_boundary": {
        "en": "The park has no boundary: survey gaps cannot be computed.",
        "vi": "Khu chưa có ranh giới: không tính được khu vực chưa khảo sát.",
    },
    "s_broadband": {
        "en": "Broadband lines against the targets",
        "vi": "Đường truyền băng rộng so với chỉ tiêu",
    },
    "targets": {"en": "Targets", "vi": "Chỉ tiêu"},
    "gateway": {"en": "Gateway", "vi": "Gateway"},
    "down": {"en": "Download", "vi": "Tải xuống"},
    "up": {"en": "Upload", "vi": "Tải lên"},
    "latency": {"en": "Latency p95", "vi": "Độ trễ p95"},
    "loss": {"en": "Loss", "vi": "Mất gói"},
    "ipv6": {"en": "IPv6", "vi": "IPv6"},
    "bb_meets": {"en": "Meets", "vi": "Đạt"},
    "bb_partial": {"en": "Partly", "vi": "Đạt một phần"},
    "bb_fails": {"en": "Fails", "vi": "Không đạt"},
    "bb_unknown": {"en": "Not measured", "vi": "Chưa đo"},
    "bb_share": {"en": "Lines meeting every target", "vi": "Số đường truyền đạt mọi chỉ tiêu"},
    "no_broadband": {
        "en": "No broadband probes in this period.",
        "vi": "Không có số liệu đo băng rộng trong kỳ này.",
    },
    "s_change": {"en": "Change since the previous period", "vi": "Thay đổi so với kỳ trước"},
    "zones_by_status": {"en": "Zones by status", "vi": "Số vùng theo trạng thái"},
    "none": {"en": "—", "vi": "—"},
}


def t(key: str, lang: Lang) -> str:
    """The text of ``key`` in ``lang``."""
    return TEXT[key][lang]


def number(x: float | None, lang: Lang, digits: int = 0) -> str:
    """``x`` with thousands grouping: ``12,345.6`` in English, ``12.345,6`` in Vietnamese."""
    if x is None or x != x:
        return TEXT["none"][lang]
    text = f"{x:,.{digits}f}"
    if lang == "vi":
        text = text.replace(",", "\x00").replace(".", ",").replace("\x00", ".")
    return text


def percent(share: float | None, lang: Lang, digits: int = 1) -> str:
    """A share 0..1 as a percentage."""
    return TEXT["none"][lang] if share is None else f"{number(share * 100.0, lang, digits)} %"


def signed(x: float | None, lang: Lang, digits: int = 0, unit: str = "") -> str:
    """A change with its sign (``+1,200 m²``)."""
    if x is None:
        return TEXT["none"][lang]
    sign = "+" if x > 0 else ("−" if x < 0 else "±")
    return f"{sign}{number(abs(x), lang, digits)}{unit}"


def hectares(m2: float | None, lang: Lang) -> str:
    return TEXT["none"][lang] if m2 is None else f"{number(m2 / 1e4, lang, 2)} ha"
