"""User-facing strings in en-US and zh-CN. `t(locale, key, **kw)` falls back to en-US."""
from __future__ import annotations

MESSAGES: dict[str, dict[str, str]] = {
    "en-US": {
        "queued": "⏳ Queued #{position}…",
        "queued_nopos": "⏳ Queued…",
        "running": "🎨 Generating… {done}/{count}",
        "done": "Done in {seconds:.1f}s",
        "ai_label": "AI-generated",
        "footer": "AI-generated · {model} · seed {seed}",
        "engine_down": "The generator is unreachable right now. Please try again in {retry:.0f}s.",
        "queue_full": "The queue is full. Please try again in {retry:.0f}s.",
        "invalid_option": "`{field}` {rule}.",
        "prompt_refused": "This prompt was refused by the content policy (rule: {rule}).",
        "job_failed": "Generation failed: {message}",
        "unknown_job": "I don't know a job with the id `{job}`.",
        "not_yours": "Only the requester or a moderator can do that.",
        "deleted": "Deleted.",
        "no_jobs": "You have no jobs yet.",
        "jobs_title": "Your recent jobs",
        "details_title": "Details of job {job}",
        "not_a_result": "That message is not a generation result.",
        "reloaded": "Catalog reloaded: {commands} commands ({changed}).",
        "changed": "synced",
        "unchanged": "no change",
        "admin_only": "Only server managers can do that.",
        "too_large": "The result is larger than this channel accepts ({size} > {limit} bytes).",
        "emoji_saved": "Saved as :{name}: in this server.",
        "emoji_too_big": "This image is {size} bytes; server emoji must be at most 256 KiB.",
        "need_manage_expressions": "I need the Manage Expressions permission to add server emoji.",
        "blocked": "You are blocked from generating here{until}.",
        "command_disabled": "/{command} is disabled here.",
        "role_not_allowed": "Your roles may not use /{command} here.",
        "nsfw_only": "/{command} can only be used in age-restricted channels.",
        "quota": "{message}",
    },
    "zh-CN": {
        "queued": "⏳ 排队中，第 {position} 位…",
        "queued_nopos": "⏳ 排队中…",
        "running": "🎨 生成中… {done}/{count}",
        "done": "完成，用时 {seconds:.1f} 秒",
        "ai_label": "AI 生成",
        "footer": "AI 生成 · {model} · 种子 {seed}",
        "engine_down": "生成服务暂时无法连接，请在 {retry:.0f} 秒后重试。",
        "queue_full": "队列已满，请在 {retry:.0f} 秒后重试。",
        "invalid_option": "`{field}` {rule}。",
        "prompt_refused": "该提示词被内容策略拒绝（规则：{rule}）。",
        "job_failed": "生成失败：{message}",
        "unknown_job": "找不到编号为 `{job}` 的任务。",
        "not_yours": "只有请求者或管理员可以这样做。",
        "deleted": "已删除。",
        "no_jobs": "你还没有任务。",
        "jobs_title": "你最近的任务",
        "details_title": "任务 {job} 的详情",
        "not_a_result": "这条消息不是生成结果。",
        "reloaded": "已重新加载目录：{commands} 个命令（{changed}）。",
        "changed": "已同步",
        "unchanged": "无变化",
        "admin_only": "只有服务器管理员可以这样做。",
        "too_large": "结果超过了此频道允许的大小（{size} > {limit} 字节）。",
        "emoji_saved": "已保存为本服务器表情 :{name}:。",
        "emoji_too_big": "图片大小为 {size} 字节；服务器表情不能超过 256 KiB。",
        "need_manage_expressions": "我需要“管理表情”权限才能添加服务器表情。",
        "blocked": "你在这里被禁止生成{until}。",
        "command_disabled": "/{command} 在这里已被禁用。",
        "role_not_allowed": "你的身份组不能在这里使用 /{command}。",
        "nsfw_only": "/{command} 只能在年龄限制频道中使用。",
        "quota": "{message}",
    },
}


def t(locale: object, key: str, **kw: object) -> str:
    """The message ``key`` in ``locale`` (a discord.Locale or a string), formatted."""
    loc = str(getattr(locale, "value", locale) or "en-US")
    table = MESSAGES.get(loc) or MESSAGES.get("zh-CN" if loc.startswith("zh") else "en-US")
    template = table.get(key) or MESSAGES["en-US"][key]
    return template.format(**kw)
