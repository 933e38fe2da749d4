"""Chinese names of the codes the database stores, for report headers and charts.

Only display names: an unknown code is shown as it is, so a new category never breaks a report.
"""
from __future__ import annotations

CATEGORY = {"product_quality": "产品质量", "logistics": "物流配送", "service": "服务态度",
            "price_refund": "价格退款", "system_fault": "系统故障", "other": "其他投诉", "non_complaint": "非投诉"}
URGENCY = {"P0": "P0 紧急", "P1": "P1 重要", "P2": "P2 一般"}
CHANNEL = {"email": "电子邮件", "webchat": "在线客服", "wechat": "微信", "phone": "电话", "walk_in": "现场"}
REMEDY = {"refund": "退款", "return": "退货", "replacement": "换货", "compensation": "补偿"}
DIMENSION = {"efficiency": "处理效率", "attitude": "服务态度", "solution": "解决方案"}
STATUS = {"registered": "已登记", "assigned": "已分派", "in_progress": "处理中", "awaiting_customer": "等待客户",
          "resolved": "已解决", "confirmed": "客户已确认", "surveyed": "已回访", "closed": "已关闭",
          "disputed": "客户有异议", "reopened": "已重开", "merged": "已合并", "withdrawn": "已撤诉"}
DIMENSIONS_OF_DISTRIBUTION = {"category": "投诉分类", "urgency": "紧急程度", "channel": "受理渠道", "region": "地区",
                              "product": "产品", "department": "责任部门"}
UNKNOWN = "未填写"
OTHERS = "其他"


def channel(code: str) -> str:
    if code.startswith("webhook:"):
        return f"接口（{code.split(':', 1)[1]}）"
    return CHANNEL.get(code, code)


def label(dimension: str, code: str | None) -> str:
    if code is None or code == "":
        return UNKNOWN
    if dimension == "category":
        return CATEGORY.get(code, code)
    if dimension == "urgency":
        return URGENCY.get(code, code)
    if dimension == "channel":
        return channel(code)
    return code
