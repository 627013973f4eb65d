"""The cockpit speaks zh-CN by default and English on request.

Messages are written in English in templates and code; ``ZH`` gives their Chinese. A test
checks that every message used in a template has its translation.
"""

from __future__ import annotations

from collections.abc import Callable

LOCALES = ("zh-CN", "en")

ZH: dict[str, str] = {
    "shuzhi": "数治",
    "Integrated intelligent public data platform": "一体化智能化公共数据平台",
    "Cockpit": "驾驶舱",
    "Catalog": "数据目录",
    "Regions": "行政区划",
    "Departments": "部门",
    "Users": "用户",
    "Change log": "变更日志",
    "Log in": "登录",
    "Log out": "退出",
    "Username": "用户名",
    "Password": "密码",
    "Language": "语言",
    "Search": "搜索",
    "Search the catalog": "搜索数据目录",
    "All": "全部",
    "Provider": "提供部门",
    "System": "所属体系",
    "Grade": "分级",
    "Sharing": "共享属性",
    "Open": "开放属性",
    "State": "状态",
    "Region": "行政区划",
    "Code": "编码",
    "Name": "名称",
    "Summary": "摘要",
    "Tags": "标签",
    "Fields": "信息项",
    "Field": "信息项",
    "Title": "中文名称",
    "Type": "类型",
    "Personal data": "个人信息类型",
    "Nullable": "可为空",
    "Required": "必填",
    "Primary key": "主键",
    "Description": "说明",
    "Classification": "资源分类",
    "Format": "资源格式",
    "Update cycle": "更新周期",
    "Sharing conditions": "共享条件",
    "National level": "国家分类分级",
    "Version": "版本",
    "Updated": "更新时间",
    "Created": "创建时间",
    "History": "流转记录",
    "Comment": "意见",
    "Actions": "操作",
    "Edit": "编辑",
    "Save": "保存",
    "Cancel": "取消",
    "New resource": "新建资源",
    "Add field": "添加信息项",
    "Remove": "删除",
    "Yes": "是",
    "No": "否",
    "results": "条结果",
    "No resources match.": "没有符合条件的资源。",
    "Previous": "上一页",
    "Next": "下一页",
    "Resources by system": "各体系已发布资源",
    "Resources by state": "资源状态",
    "Published resources": "已发布资源",
    "Awaiting review": "待审核",
    "Drafts": "草稿",
    "County-level units": "县级单元",
    "Something went wrong": "出错了",
    "Back": "返回",
    "Signed in as": "当前用户",
    "The reason (required to reject or withdraw)": "原因（驳回或撤销时必填）",
    "Saved.": "已保存。",
    "Done.": "操作成功。",
    "Level": "层级",
    "Parent": "上级",
    "Systems": "服务体系",
    "Credit code": "统一社会信用代码",
    "Time": "时间",
    "Who": "操作人",
    "Action": "动作",
    "Object": "对象",
    "Request": "请求",
    "Before": "变更前",
    "After": "变更后",
    "Your session has ended; log in again.": "会话已结束，请重新登录。",
    "Wrong username or password. After repeated failures a login is locked for a while.": (
        "用户名或密码错误。多次输错后账号将被暂时锁定。"
    ),
    "Demo logins": "演示账号",
    "Count": "数量",
    "Department": "部门",
    "Roles": "角色",
    "Role": "角色",
    "Grant a role": "授予角色",
    "Grant": "授予",
    "Revoke": "撤销",
    "inactive": "已停用",
    "New user": "新建用户",
    "New department": "新建部门",
    "Choose a YAML file.": "请选择 YAML 文件。",
    "Catalog YAML file": "目录 YAML 文件",
    "Apply YAML": "导入 YAML",
    "Applied: {created} created, {updated} updated, {unchanged} unchanged.": (
        "导入完成：新建 {created} 条，更新 {updated} 条，未变 {unchanged} 条。"
    ),
    "My account": "我的账户",
    "API tokens": "API 令牌",
    "Copy the token now; it is not shown again.": "请立即复制令牌，它不会再次显示。",
    "Token": "令牌",
    "Expires": "到期",
    "Last used": "最近使用",
    "revoked": "已撤销",
    "What the token is for": "令牌用途",
    "Days": "有效天数",
    "New token": "新建令牌",
}


def normalise(locale: str | None, default: str) -> str:
    if locale in LOCALES:
        return locale  # type: ignore[return-value]
    if locale and locale.lower().startswith("en"):
        return "en"
    if locale and locale.lower().startswith("zh"):
        return "zh-CN"
    return default


def translator(locale: str) -> Callable[[str], str]:
    if locale == "en":
        return lambda message: message
    return lambda message: ZH.get(message, message)
