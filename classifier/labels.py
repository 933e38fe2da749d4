"""Label codes and their Chinese names (the codes are what we store)."""

CATEGORIES: tuple[str, ...] = (
    "product_quality",
    "logistics",
    "service",
    "price_refund",
    "system_fault",
    "other",
    "non_complaint",
)
CATEGORY_LABELS: dict[str, str] = {
    "product_quality": "产品质量",
    "logistics": "物流配送",
    "service": "服务态度",
    "price_refund": "价格退款",
    "system_fault": "系统故障",
    "other": "其他投诉",
    "non_complaint": "非投诉",
}
URGENCIES: tuple[str, ...] = ("P0", "P1", "P2")
URGENCY_LABELS: dict[str, str] = {"P0": "紧急", "P1": "重要", "P2": "一般"}
