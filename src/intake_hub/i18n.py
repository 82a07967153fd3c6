"""The customer pages' words in Chinese and English, and picking one from Accept-Language."""

from __future__ import annotations

from typing import Literal

Lang = Literal["zh", "en"]

TEXTS: dict[Lang, dict[str, str]] = {
    "zh": {
        "title": "联系客服",
        "intro": "请留下您的问题，我们会尽快处理。提交后您会得到工单号和查询码。",
        "name": "称呼",
        "contact": "手机号或邮箱",
        "subject": "主题（可选）",
        "order_id": "订单号（可选）",
        "text": "问题描述",
        "send": "提交",
        "ticket": "工单号",
        "access_code": "查询码",
        "keep": "请保存工单号和查询码，凭此查询处理进度。",
        "status": "状态",
        "conversation": "沟通记录",
        "you": "您",
        "us": "客服",
        "auto": "自动回复",
        "processing": "您的消息已收到，正在处理中。",
        "not_found": "未找到该工单，请检查工单号和查询码。",
        "status_received": "已受理",
        "status_in_progress": "处理中",
        "status_resolved": "已解决",
        "status_closed": "已关闭",
        "errors": "请修改以下内容：",
        "check": "查询工单",
        "check_link": "查询进度",
        "bookmark": "收藏此页即可随时查看进度。",
        "reply": "补充说明",
        "reply_send": "发送",
        "sent": "您的消息已发送，客服会在此工单中回复您。",
        "not_yet_stored": "工单正在创建中，请稍后再发送。",
        "reply_invalid": "请填写 1 至 10000 字的内容。",
        "rate_limited": "提交太频繁了，请约 {wait}后再发送。您填写的内容已保留。",
        "busy": "我们暂时忙不过来，请约 {wait}后再发送。您填写的内容已保留。",
        "too_many_codes": "查询码错误次数过多，请约 {wait}后再试。",
        "too_many_files": "今天上传的照片和文件太多了，请约 {wait}后再发送。您填写的内容已保留。",
        "attachments": "照片或文件（可选）",
        "attachments_hint": "最多 {files} 个，每个不超过 {mb} MB。",
        "file_too_large": "第 {n} 个文件太大了（每个不超过 {mb} MB）。",
        "file_too_many": "第 {n} 个文件超出了数量限制（最多 {files} 个）。",
        "file_type": "第 {n} 个文件的类型不能上传（例如程序文件）。",
        "file_corrupt": "第 {n} 个文件已损坏，无法打开。",
        "file_empty": "第 {n} 个文件是空的。",
        "files_again": "您填写的文字已保留，请重新选择要上传的照片。",
        "uploading": "正在上传…",
        "files_total_too_large": "所选文件合计太大了（合计不超过 {mb} MB）。",
        "upload_failed": "上传没有完成，请检查网络后再次提交。您填写的内容已保留。",
        "attachment_pending": "正在接收…",
        "attachment_failed": "未能接收",
        "attachment_link": "链接",
        "attachment_location": "位置",
        "photo": "照片",
        "seconds": "{n} 秒",
        "minutes": "{n} 分钟",
    },
    "en": {
        "title": "Contact customer service",
        "intro": "Tell us what you need and we will get back to you soon. You will receive a ticket number and an access code.",  # noqa: E501
        "name": "Your name",
        "contact": "Phone or email",
        "subject": "Subject (optional)",
        "order_id": "Order number (optional)",
        "text": "Your message",
        "send": "Send",
        "ticket": "Ticket number",
        "access_code": "Access code",
        "keep": "Keep the ticket number and access code to check progress.",
        "status": "Status",
        "conversation": "Conversation",
        "you": "You",
        "us": "Customer service",
        "auto": "automatic reply",
        "processing": "We have your message and are processing it.",
        "not_found": "No such ticket. Check the ticket number and access code.",
        "status_received": "Received",
        "status_in_progress": "In progress",
        "status_resolved": "Resolved",
        "status_closed": "Closed",
        "errors": "Please correct the following:",
        "check": "Check a ticket",
        "check_link": "Check progress",
        "bookmark": "Bookmark this page to check progress at any time.",
        "reply": "Add to this ticket",
        "reply_send": "Send",
        "sent": "Your message was sent. We will answer on this ticket.",
        "not_yet_stored": "Your ticket is still being opened; please send again in a moment.",
        "reply_invalid": "Please write between 1 and 10,000 characters.",
        "rate_limited": "Too many messages in a short time; please send again in about {wait}. What you wrote is kept below.",  # noqa: E501
        "busy": "We are very busy right now; please send again in about {wait}. What you wrote is kept below.",  # noqa: E501
        "too_many_codes": "Too many wrong access codes were tried; please try again in about {wait}.",  # noqa: E501
        "too_many_files": "Too many photos and files today; please send again in about {wait}. What you wrote is kept below.",  # noqa: E501
        "attachments": "Photos or files (optional)",
        "attachments_hint": "Up to {files}, each at most {mb} MB.",
        "file_too_large": "File {n} is too large (each at most {mb} MB).",
        "file_too_many": "File {n} is one too many (at most {files}).",
        "file_type": "File {n} is of a type that cannot be sent (a program, for example).",
        "file_corrupt": "File {n} is damaged and cannot be opened.",
        "file_empty": "File {n} is empty.",
        "files_again": "What you wrote is kept; please choose your photos again.",
        "uploading": "Uploading…",
        "files_total_too_large": "The files together are too large (at most {mb} MB in all).",
        "upload_failed": "The upload did not finish; check your connection and send again. What you wrote is kept.",  # noqa: E501
        "attachment_pending": "Being received…",
        "attachment_failed": "Could not be received",
        "attachment_link": "Link",
        "attachment_location": "Location",
        "photo": "Photo",
        "seconds": "{n} seconds",
        "minutes": "{n} minutes",
    },
}


def pick_lang(accept_language: str | None, override: str | None = None) -> Lang:
    """Chinese or English: an explicit `?lang=` first, then the best Accept-Language entry."""
    if override in ("zh", "en"):
        return "zh" if override == "zh" else "en"
    best: tuple[float, Lang] | None = None
    for part in (accept_language or "").split(","):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        primary = tag.strip().lower().split("-")[0]
        if primary in ("zh", "en") and q > 0 and (best is None or q > best[0]):
            best = (q, "zh" if primary == "zh" else "en")
    return best[1] if best else "zh"


def wait_text(lang: Lang, seconds: int) -> str:
    """How long to wait, in words: seconds up to two minutes, then whole minutes."""
    if seconds <= 120:
        return TEXTS[lang]["seconds"].format(n=seconds)
    return TEXTS[lang]["minutes"].format(n=-(-seconds // 60))
