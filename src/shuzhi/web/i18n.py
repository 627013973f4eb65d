"""The cockpit speaks zh-CN by default and English on request.

Messages are written in English in templates and code; ``ZH`` gives their Chinese. A
service's refusal that a page shows is a ``core.errors.Message``, translated by its
template (``say``). A test checks that every message used in a template, and every
``Message`` template in the code, has its translation.
"""

from __future__ import annotations

from collections.abc import Callable

from shuzhi.core.errors import Message

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
    # notify: the inbox and webhooks
    "Inbox": "消息",
    "Webhooks": "Webhook 推送",
    "Unread": "未读",
    "New": "新",
    "Kind": "类别",
    "Received": "收到时间",
    "Mark read": "标为已读",
    "Mark all read": "全部标为已读",
    "Marked read.": "已标为已读。",
    "{count} marked read.": "{count} 条已标为已读。",
    "No message yet.": "暂无消息。",
    "No unread message.": "没有未读消息。",
    "Other systems are told what happens here by signed HTTP posts; a failed delivery is "
    "retried with a growing wait.": (
        "通过带签名的 HTTP 推送把平台上发生的事告知其他系统；推送失败会按递增的间隔重试。"
    ),
    "URL": "地址",
    "Events": "事件",
    "Event": "事件",
    "Waiting": "待发送",
    "Delivered": "已送达",
    "Given up": "已放弃",
    "Pending": "待发送",
    "Sending": "发送中",
    "No webhook yet.": "尚未登记 Webhook。",
    "Register a webhook": "登记 Webhook",
    "Comma-separated event names, or * for every event.": "以逗号分隔的事件名，* 表示全部事件。",
    "Signing secret of {name}": "{name} 的签名密钥",
    "Copy the secret now. It is shown this once and cannot be shown again; if it is lost, "
    "rotate it.": "请立即复制密钥。密钥只显示这一次，之后无法再次查看；如遗失，请轮换密钥。",
    "Each delivery is signed: X-Shuzhi-Signature is sha256= and the hex HMAC-SHA256 of the "
    "secret over the timestamp, a dot and the body.": (
        "每次推送都带签名：X-Shuzhi-Signature 为 sha256= 加上以密钥对“时间戳.请求体”"
        "计算的 HMAC-SHA256 十六进制值。"
    ),
    "Send a test event": "发送测试事件",
    "Rotate the secret": "轮换密钥",
    "Rotating gives a new secret at once; the old one signs beside it for a while, so that "
    "the receiver can switch.": (
        "轮换后立即启用新密钥；旧密钥在过渡期内仍一并签名，便于接收方切换。"
    ),
    "Test event delivered.": "测试事件已送达。",
    "Old secret signs until": "旧密钥签名截至",
    "Test event not delivered: {error}": "测试事件未送达：{error}",
    "Deliveries": "推送记录",
    "Id": "编号",
    "Attempts": "尝试次数",
    "Last status": "最近状态码",
    "Last error": "最近错误",
    "Next attempt": "下次尝试",
    "No delivery yet.": "暂无推送记录。",
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
    # full aggregation (全量归集): the data tab and the aggregation-health page
    "Aggregation health": "归集监测",
    "Metadata": "元数据",
    "Data": "数据",
    "Current snapshot": "当前快照",
    "Rows in the snapshot": "快照行数",
    "Recent batches": "近期批次",
    "Masked columns": "脱敏列",
    "Load a file": "上传文件归集",
    "File (CSV, XLSX, JSON, JSONL or Parquet)": "文件（CSV、XLSX、JSON、JSONL 或 Parquet）",
    "Mode": "方式",
    "Sheet (Excel)": "工作表（Excel）",
    "the first sheet": "默认第一个工作表",
    "Encoding": "编码",
    "detected (UTF-8, GBK…)": "自动识别（UTF-8、GBK…）",
    "Column mapping, one 'column=field' a line (optional)": "列映射，每行一条“源列=信息项”（可选）",
    "Up to {mb} MiB. Rows that break a rule go to the quarantine with the reason; a file that "
    "cannot be read loads nothing.": (
        "文件不超过 {mb} MiB。不符合规则的行连同原因进入隔离区；无法读取的文件不会装载任何数据。"
    ),
    "Load": "上传并归集",
    "Choose a file to load.": "请选择要上传的文件。",
    "Choose full or incremental.": "请选择全量或增量。",
    "Column mapping {line}: write it as column=field.": "列映射“{line}”：请写成“源列=信息项”。",
    "Batch {n}: read {read}, loaded {loaded}, quarantined {bad}, duplicates {dup}.": (
        "批次 {n}：读取 {read} 行，入库 {loaded} 行，隔离 {bad} 行，重复 {dup} 行。"
    ),
    "Batch {n}: the same data as the current snapshot, nothing rewritten.": (
        "批次 {n}：与当前快照数据相同，未重写。"
    ),
    "Another worker is pulling this source now.": "另一个进程正在拉取该数据源。",
    "Marked as reviewed.": "已标记为已复核。",
    "Scheduled sources": "定时数据源",
    "Source": "来源",
    "Schedule": "调度",
    "the update cycle": "按更新周期",
    "Next run": "下次运行",
    "Last run": "上次运行",
    "Run now": "立即运行",
    "running": "运行中",
    "disabled": "已停用",
    "attempt": "重试次数",
    "No scheduled source. Register one through the API or with": (
        "暂无定时数据源。可通过 API 注册，或使用命令"
    ),
    "No scheduled source you may read.": "没有您可查看的定时数据源。",
    "Schema": "数据结构",
    "Identifier format": "标识格式",
    "Value rules": "取值规则",
    "also": "别名",
    "one of": "取值",
    "Sample rows": "样例数据",
    "personal data masked": "个人信息已脱敏",
    "masked": "脱敏",
    "No data loaded yet.": "尚未归集数据。",
    "Quality trend": "质量趋势",
    "As a table": "以表格查看",
    "Batch": "批次",
    "batch": "批次",
    "Measured": "测量时间",
    "Rows": "行数",
    "rows": "行",
    "Completeness": "完整性",
    "Validity": "有效性",
    "Uniqueness": "唯一性",
    "Volume change": "数据量变化",
    "No batch has been measured yet.": "尚无批次质量数据。",
    "Batches": "归集批次",
    "Read": "读取",
    "Loaded": "入库",
    "Quarantined": "隔离",
    "Duplicates": "重复",
    "Snapshot": "快照",
    "Started": "开始时间",
    "No batches yet.": "尚无归集批次。",
    "Quarantine": "隔离区",
    "Download CSV": "下载 CSV",
    "Rule": "规则",
    "Filter": "筛选",
    "Clear": "清除",
    "Row": "行号",
    "Reason": "原因",
    "Value": "值",
    "Every rule broken": "违反的全部规则",
    "No rows were refused.": "没有被拒收的行。",
    "Personal data found in fields declared as not personal": (
        "未声明为个人信息的字段中发现的个人信息"
    ),
    "Looks personal": "疑似个人信息",
    "Looks like": "疑似",
    "Share of values": "占比",
    "Example (masked)": "示例（已脱敏）",
    "Reviewed": "复核",
    "Mark reviewed": "标记为已复核",
    "not reviewed": "未复核",
    "A reviewed field keeps its classification; to treat it as personal data, edit the "
    "catalog resource.": "复核后字段保持原分类；如需按个人信息处理，请编辑目录资源。",
    "None found.": "未发现。",
    "As of": "统计时间",
    "Light": "亮灯",
    "With a current snapshot": "已有当前快照",
    "Coverage": "归集覆盖率",
    "Coverage trend": "覆盖率趋势",
    "Day": "日期",
    "Published": "已发布",
    "Current": "已归集",
    "No batch has loaded yet; the trend starts with the first one.": (
        "尚无批次入库；首个批次入库后开始记录趋势。"
    ),
    "By provider": "按提供部门",
    "By system": "按体系",
    "Resources": "资源",
    "Resource": "资源",
    "Freshness": "时效",
    "Last loaded": "最近入库",
    "Last batch": "最近批次",
    "Personal-data flags": "个人信息提示",
    "Personal-data flags to review": "待复核的个人信息提示",
    # the sharing gateway (数据共享网关): applications, grants, consumers, the access log
    "Gateway": "共享网关",
    "Sharing gateway": "数据共享网关",
    "Apply for this resource": "申请使用",
    "Applications": "申请",
    "Application": "申请",
    "Grants": "授权",
    "Consumer systems": "应用系统",
    "Consumer system": "应用系统",
    "Awaiting my decision": "待我审批",
    "Our applications": "本部门申请",
    "Nothing awaits your decision.": "没有待您审批的申请。",
    "No applications.": "暂无申请。",
    "No decision yet.": "尚无审批记录。",
    "No change since it was granted.": "授权以来未有变更。",
    "Access grant": "授权",
    "Overdue": "已逾期",
    "Submitted": "提交时间",
    "Decision due": "审批时限",
    "Decided": "审批时间",
    "Rights": "权限",
    "Matter code": "事项编码",
    "Purpose": "用途",
    "Legal basis": "法律依据",
    "Region scope": "区域范围",
    "Valid": "有效期",
    "Valid from": "生效日期",
    "Valid until": "截止日期",
    "Fields asked": "申请的信息项",
    "Asked in clear": "申请明文",
    "in clear": "明文",
    "Ask": "申请",
    "Ask in clear": "申请明文",
    "None of your department's application systems can apply yet.": (
        "本部门尚无可提出申请的应用系统。"
    ),
    "Register an application system": "注册应用系统",
    "An L4 resource never leaves the platform: only verification can be granted.": (
        "L4 级资源不出平台，只能申请数据核验。"
    ),
    "Personal fields are masked unless the provider approves them in clear; ask in clear only "
    "for what the matter needs.": (
        "个人信息字段默认脱敏提供，经提供部门批准方可明文提供；请仅为办理事项确需的字段申请明文。"
    ),
    "the whole region of the consumer department": "默认为应用系统所属部门的整个行政区划",
    "Empty dates: from today, for the platform's default grant period.": (
        "日期留空：自今日起，按平台默认授权期限。"
    ),
    "Submit the application": "提交申请",
    "Granted at once: the resource is shared unconditionally.": "已即时授权：该资源为无条件共享。",
    "Application submitted; it awaits the provider's decision.": "申请已提交，等待提供部门审批。",
    "Personal fields asked in clear: tick those approved in clear; the others are masked": (
        "申请明文的个人信息字段：勾选批准明文提供的字段，未勾选的脱敏提供"
    ),
    "Requests per second (optional)": "每秒请求数上限（可选）",
    "Rows per day (optional)": "每日行数上限（可选）",
    "the platform default": "平台默认值",
    "The reason (required to reject)": "原因（驳回时必填）",
    "Requests per second": "每秒请求数上限",
    "Rows per day": "每日行数上限",
    "Fields and how each is sent": "信息项及提供方式",
    "Sent as": "提供方式",
    "Clear: the value as stored. Masked: shown in part. Token: a keyed hash, the same for "
    "the same value and consumer. Hidden: never sent.": (
        "明文：按原值提供。脱敏：部分遮盖。令牌化：带密钥的哈希值，同一应用系统对同一值得到相同令牌。"
        "不提供：不返回该字段。"
    ),
    "The reason (required to suspend or revoke)": "原因（暂停或撤销时必填）",
    "No grants.": "暂无授权。",
    "Live credentials": "有效凭证",
    "No application system you may see.": "没有您可查看的应用系统。",
    "Contact": "联系人",
    "Enabled": "已启用",
    "Disabled": "已停用",
    "Enable": "启用",
    "Disable": "停用",
    "Use": "使用情况",
    "Credentials": "访问凭证",
    "New credential": "新凭证",
    "Copy the secret now. It is shown this once and cannot be shown again; if it is lost, "
    "rotate the credential.": (
        "请立即复制密钥。密钥仅显示这一次，无法再次查看；如遗失，请轮换凭证。"
    ),
    "Access key": "访问密钥 ID",
    "Secret": "密钥",
    "Rotate": "轮换",
    "No credential yet.": "尚无凭证。",
    "Issue a credential": "签发凭证",
    "Rotating issues a new credential; the old one keeps working for a short overlap so that "
    "the system can switch.": "轮换将签发新凭证，旧凭证在短暂的过渡期内仍可使用，以便系统切换。",
    "Access log": "访问日志",
    "Gateway access log": "网关访问日志",
    "Chain intact: {n} entries, each linked to the one before.": (
        "日志链完整：共 {n} 条，每条均与前一条相衔接。"
    ),
    "Chain broken at entry {seq}: {reason}.": "日志链在第 {seq} 条处断裂：{reason}。",
    "The {n} entries before it are intact.": "此前的 {n} 条完整。",
    "its content does not match its hash": "其内容与哈希值不符",
    "its link to the previous entry does not match": "其与前一条的链接不符",
    "Resource or service": "资源或服务",
    "Outcome (ok, or why refused)": "结果（ok 或拒绝原因）",
    "Outcome": "结果",
    "End user": "最终用户",
    "Operation": "操作",
    "Target": "对象",
    "Status": "状态码",
    "Hash": "哈希",
    "No gateway call yet.": "尚无网关调用。",
    "The chain was not verified in this view.": "本次查看未校验日志链。",
    "Verifying walks every entry of the log, which takes a while on a long one.": (
        "校验需逐条核对全部日志，日志较多时需要一些时间。"
    ),
    "Verify the chain now": "立即校验",
    "Patterns worth a look": "可疑模式",
    "Last {n} days": "近 {n} 天",
    "Pattern": "模式",
    "Calls": "调用次数",
    "Why it is flagged": "提示原因",
    "Its calls in the log": "查看其调用记录",
    "Nothing worth a look in the last {n} days.": "近 {n} 天未发现可疑模式。",
    "Usage by consumer system and resource": "按应用系统和资源的使用统计",
    # gateway usage (使用统计)
    "Usage": "使用统计",
    "Period": "统计周期",
    "Calls since {day}, as far as you may see them.": "自 {day} 起、您有权查看的调用。",
    "Calls and refusals by day": "每日调用与拒绝",
    "Refused": "拒绝次数",
    "No call in this period.": "此期间没有调用。",
    "By consumer system": "按应用系统",
    "By resource or service": "按资源或服务",
    "Calls by day, consumer system, resource and purpose": "按日期、应用系统、资源和用途的调用明细",
    "no purpose given": "未填写用途",
    "Rows {first}–{last} of {n}.": "第 {first}–{last} 行，共 {n} 行。",
    # the brain (大脑): indicators, evaluation against targets, forecasts, early warnings
    "Brain": "大脑",
    "Warnings": "预警",
    "Indicators": "指标",
    "Indicator": "指标",
    "Search indicators by name or code": "按名称或代码搜索指标",
    "{n} indicators; the newest value of each in {region}.": (
        "共 {n} 项指标；显示{region}的最新值。"
    ),
    "No indicator matches.": "没有符合条件的指标。",
    "Owner": "责任部门",
    "Statistical period": "统计期",
    "Newest value": "最新值",
    "Unit": "单位",
    "Target value": "目标值",
    "Year on year": "同比",
    "Period on period": "环比",
    "Rank": "排名",
    "Rank {rank} of {n}": "第 {rank} / {n}",
    "Rank among its siblings": "同级排名",
    "Latest": "最新",
    "on track: {value}": "按进度应达 {value}",
    "The period is not over yet: the value is compared with the share of the target its data "
    "covers.": "本期尚未结束：按数据覆盖的时间进度折算目标后比较。",
    "No value computed for this region yet.": "该地区尚无计算结果。",
    "Definition": "指标定义",
    "Direction": "指标方向",
    "Measure": "计算方式",
    "Additivity": "可加性",
    "Sources": "数据来源",
    "derived from other indicators": "由其他指标派生",
    "Yellow within": "黄灯区间",
    "of the target": "（相对目标值）",
    "History, target and forecast": "历史、目标与预测",
    "Forecast from {origin} by {model}; backtest MASE {mase}. Bands: 80% and 95% intervals.": (
        "预测起点 {origin}，模型 {model}，回测 MASE {mase}。阴影为 80% 和 95% 预测区间。"
    ),
    "No forecast": "暂无预测",
    "Forecasts are made for monthly values.": "预测仅针对月度数据。",
    "Forecast": "预测值",
    "low": "下限",
    "high": "上限",
    "95% interval": "95% 区间",
    "80% interval": "80% 区间",
    "Child regions": "下级地区",
    "No child region has a value for this period.": "下级地区在本期均无数据。",
    "Warnings in this region": "本地区预警",
    "Every warning on it here": "查看本地区该指标的全部预警",
    "No warning on this indicator in this region.": "本地区该指标暂无预警。",
    "Severity": "严重程度",
    "Message": "说明",
    "Open warnings": "未解除",
    "On the indicator": "指标",
    "Since": "起始时间",
    "Its warnings": "该地区的预警",
    "The first {n} are shown; narrow the filters to see the others.": (
        "仅显示前 {n} 条；请缩小筛选范围查看其余预警。"
    ),
    "No warning matches.": "没有符合条件的预警。",
    "Line": "预警线",
    "Timeline": "处置时间线",
    "From": "原状态",
    "To": "新状态",
    "Evaluated": "评估时间",
    "It has not changed state since it was first evaluated.": "自首次评估以来状态未发生变化。",
    # the brain's goals, monthly brief, definitions, targets and computation
    "Strategic goals": "战略目标",
    "Monthly brief": "月度简报",
    "Indicators YAML file": "指标 YAML 文件",
    "Apply indicators YAML": "导入指标 YAML",
    "Recompute": "重新计算",
    "Last computation": "最近一次计算",
    "{n} values": "{n} 个值",
    "A file's indicators are applied together or not at all; their values change when they "
    "are next computed.": "文件中的指标要么全部导入，要么全部不导入；指标值在下次计算后更新。",
    "Progress": "进度",
    "Term": "期限",
    "Key result": "关键结果",
    "Baseline": "基期值",
    "Expected by now": "按进度应达",
    "Next milestone": "下一里程碑",
    "Final target": "最终目标",
    "Progress as of {date}: each key result from its baseline towards its final target; a "
    "goal's light is the worst of its parts, its progress their weighted share.": (
        "进度截至 {date}：各关键结果从基期值向最终目标推进的比例；目标的亮灯取其各部分中最差者，"
        "进度为各部分的加权平均。"
    ),
    "No strategic goal has been defined yet.": "尚未制定战略目标。",
    "Month": "月份",
    "Show": "查看",
    "Download Markdown": "下载 Markdown",
    "Download HTML": "下载 HTML",
    "Generated": "生成时间",
    "Value this month": "本月值",
    "No monthly indicator in this system.": "该领域没有按月统计的指标。",
    "Warnings fired this month": "本月新触发预警",
    "Warnings resolved this month": "本月已解除预警",
    "Forecast to miss the year's target": "预计年底难以达标",
    "Rankings of the child regions": "比学赶超",
    "Best": "前列",
    "Worst": "靠后",
    "None.": "无。",
    "No child regions to rank.": "无下级地区排名。",
    "No month has a computed value yet.": "尚无任何月份的计算结果。",
    "Set targets": "设定目标值",
    "Grain": "周期类型",
    "and every region under it": "及其全部下级地区",
    "Note": "备注",
    "Set target": "设置目标",
    "Targets file (YAML or XLSX)": "目标值文件（YAML 或 XLSX）",
    "An XLSX sheet headed 指标代码, 行政区划代码, 周期类型, 期间, 目标值 (and 备注), one row per "
    "region and period, or a YAML file with a 'targets' list. A file with one bad row imports "
    "nothing.": (
        "XLSX 表头为 指标代码、行政区划代码、周期类型、期间、目标值（可加 备注），"
        "每行一个地区和期间；或含 targets 列表的 YAML 文件。文件中有一行出错则全部不导入。"
    ),
    "Import targets": "导入目标值",
    "Choose a file.": "请选择文件。",
    "{name} is larger than {mb} MB.": "{name} 超过 {mb} MB。",
    "{name}: not UTF-8 text.": "{name}：不是 UTF-8 文本。",
    "Run {run}: {rows} values in {seconds} s; warnings: {evaluated} evaluated, {transitions} "
    "changed state, {firing} firing.": (
        "第 {run} 次计算：{rows} 个值，用时 {seconds} 秒；预警：评估 {evaluated} 次，"
        "状态变化 {transitions} 次，预警中 {firing} 条。"
    ),
    "Targets: {created} created, {updated} updated.": (
        "目标值：新建 {created} 条，更新 {updated} 条。"
    ),
    "Give the target value.": "请填写目标值。",
    "Give the period the target is for.": "请填写目标所属的期间。",
    # the problem lists (问题清单)
    "Problems": "问题清单",
    "Kanban": "看板",
    "Table": "列表",
    "Export XLSX": "导出 XLSX",
    "Import XLSX": "导入 XLSX",
    "Deadline": "整改期限",
    "All {n} in the table": "在列表中查看全部 {n} 条",
    "None": "无",
    "Report a problem": "上报问题",
    "Report": "上报",
    "Overdue {n} working days": "逾期 {n} 个工作日",
    "Not assigned": "未交办",
    "Rectification unfinished, warning unchanged: the linked warning has not recovered, so "
    "this problem cannot be verified or closed until its indicator recovers.": (
        "整改不完成，预警不变色：关联预警尚未恢复，指标恢复前本问题不能核验、销号。"
    ),
    "Channel": "问题来源",
    "Responsible department": "责任单位",
    "Responsible person": "责任人",
    "Co-responsible departments": "协同单位",
    "Escalated": "已升级督办",
    "Level {n}": "第 {n} 级",
    "Reported": "上报时间",
    "Assigned": "交办时间",
    "Closed (销号)": "销号时间",
    "on time": "按期",
    "late": "逾期",
    "{n} days": "{n} 天",
    "Rectification measures": "整改措施",
    "Linked warning": "关联预警",
    "Warning": "预警",
    "Evidence": "佐证材料",
    "File": "文件",
    "Size": "大小（字节）",
    "Uploaded": "上传",
    "No evidence yet.": "尚无佐证材料。",
    "File (at most {mb} MB)": "文件（不超过 {mb} MB）",
    "Upload evidence": "上传佐证材料",
    "Attachments": "附件",
    "No transition yet.": "尚无流转记录。",
    "Checked only: nothing was imported.": "仅校验：未导入任何数据。",
    "Imported": "已导入",
    "Added": "新增",
    "Changed": "更新",
    "Rows with errors": "有错误的行",
    "Nothing was imported: correct these rows, or import only the good rows.": (
        "未导入任何数据：请更正这些行，或选择只导入正确的行。"
    ),
    "Column": "列",
    "Import again": "重新导入",
    "Import only the good rows": "只导入正确的行",
    "Only check the file": "仅校验文件",
    "Import": "导入",
    "Back to the problems": "返回问题清单",
    "Problems in all": "问题总数",
    "Open problems": "未销号",
    "Closed": "已销号",
    "Closure rate": "销号率",
    "On-time rate": "按期整改率",
    "Average days to close": "平均销号天数",
    "Number": "问题编号",
    "Problem": "问题",
    "Problem title": "问题标题",
    "Problem description": "问题描述",
    "Raised by a warning": "由预警生成",
    "Not from a warning": "非预警生成",
    "Linked to a warning": "关联预警",
    "No problem matches.": "没有符合条件的问题。",
    "Statistics": "统计",
    "By department": "按责任单位",
    "By region": "按地区",
    "By channel": "按来源",
    "A workbook in the layout of the export: one row per problem under Chinese headers. A "
    "file with one bad row imports nothing unless you ask for the good rows only.": (
        "与导出格式相同的工作簿：中文表头，每行一个问题。文件中有一行出错则全部不导入，"
        "除非选择只导入正确的行。"
    ),
    "Responsible department (optional: assigns at once)": "责任单位（可选：填写即交办）",
    "Indicator (optional)": "关联指标（可选）",
    "indicator code": "指标代码",
    "Deadline (empty: the default number of working days)": "整改期限（留空：按默认工作日数）",
    "Evidence attached to the request": "随申请提交的佐证材料",
    "The reason (required)": "理由（必填）",
    "Comment (optional)": "意见（可选）",
    "Forbidden now by the rule:": "当前规则不允许：",
    "Title or number": "标题或编号",
    "Problem {code} reported.": "问题 {code} 已上报。",
    "{action}: done.": "{action}：已完成。",
    "Evidence {name} attached.": "佐证材料 {name} 已上传。",
    "Problems raised": "生成的问题",
    "No problem raised by this warning.": "该预警尚未生成问题。",
    # -- the ledger of major reforms (一本账)
    "Reforms": "改革一本账",
    "Ledger of major reforms": "重大改革一本账",
    "Search reforms by name or code": "按名称或编号搜索改革",
    "Ledger as of": "账本日期",
    "The ledger as it stood at the end of {date}: each reform as its last version before "
    "then; reforms created later are not shown.": (
        "{date} 日终时的一本账：每项改革取当日及以前的最后一个版本；此后新建的改革不显示。"
    ),
    "{n} reforms; progress and lights computed from verified milestones and from the "
    "indicators of their key results.": (
        "共 {n} 项改革；进度和亮灯由已核验的里程碑和关键成果指标计算得出。"
    ),
    "No reform matches.": "没有符合条件的改革。",
    "Reform": "改革事项",
    "Lead department": "牵头单位",
    "Participating departments": "参与单位",
    "Milestones": "里程碑",
    "Milestone": "里程碑",
    "Due": "计划完成",
    "Done": "完成于",
    "Weight": "权重",
    "No milestone.": "暂无里程碑。",
    "Key results": "关键成果",
    "No key result.": "暂无关键成果。",
    "Check-ins and versions": "动态更新与版本",
    "Check in": "动态更新",
    "Check-in note": "更新说明",
    "What moved since the last check-in": "自上次更新以来的进展",
    "Check-in recorded as version {n}.": "动态更新已记录为第 {n} 版。",
    "Reform created": "新建",
    "Reform changed": "修改",
    "Check-in": "动态更新",
    "Milestone step": "里程碑流转",
    "Recomputed": "重新计算",
    "Linked problems": "关联问题",
    "No problem on this reform's key results.": "该改革的关键成果指标暂无关联问题。",
    # the cockpit home (驾驶舱)
    "Aggregation coverage": "归集覆盖率",
    "All warnings": "全部预警",
    "As of {date}": "截至 {date}",
    "Closed on time": "按期销号率",
    "Drill down": "分地区钻取",
    "Each region under {region}": "{region}下辖各地区",
    "Firing warnings": "预警中",
    "Full aggregation": "全量归集",
    "Key indicators": "关键指标",
    "Lights": "亮灯",
    "Major reforms": "重大改革",
    "Newest value against its target, and the last 12 periods": "最新值对照目标值，及近12期走势",
    "No indicator has a target in this region yet.": "本地区尚无设定目标值的指标。",
    "No warning is firing.": "当前没有预警。",
    "Open the ledger": "查看一本账",
    "Open the problem lists": "查看问题清单",
    "Overdue problems": "逾期问题",
    "Problem lists": "问题清单",
    "Red indicators": "红灯指标",
    "Total": "合计",
    "Trend": "走势",
    "With current data": "已归集数据",
    "overdue": "逾期",
    # refusals from the services (core.errors.Message), said by ``say``; a value ending in
    # _label is the Chinese label a translation uses in place of the code the English gives
    "log in or present an API token": "请登录或出示 API 令牌",
    "{actor} may not {action}": "{actor} 无权执行 {action}",
    "{actor} may not {action} on {what}": "{actor} 无权对“{what}”执行 {action}",
    "{workflow} {object}": "{workflow} {object}",
    "resources of {provider}": "{provider} 的数据资源",
    "resource {code}": "数据资源 {code}",
    "department {code}": "部门 {code}",
    "consumer {code}": "应用系统 {code}",
    "the gateway access log": "网关访问日志",
    "webhooks": "Webhook 推送",
    "source {source_id}": "数据源 {source_id}",
    "data of {code}": "{code} 的数据",
    "the lake": "数据湖",
    "departments under {code}": "{code} 的下级部门",
    "department {code} as a root": "作为顶级部门的 {code}",
    "user {username}": "用户 {username}",
    "regions": "行政区划",
    "reform {code}": "改革事项 {code}",
    "region {region}": "行政区划 {region}",
    "problem {code}": "问题 {code}",
    "{object_type} {id}": "{object_type} {id}",
    "indicators of {code}": "{code} 的指标",
    "indicator {code}": "指标 {code}",
    "targets of {code}": "{code} 的目标值",
    "warning rules": "预警规则",
    "warnings": "预警",
    "indicators": "指标",
    "forecasts": "预测",
    "strategic goals": "战略目标",
    "the change log": "变更日志",
    "catalog resource": "数据资源",
    "access application": "共享申请",
    "access grant": "共享授权",
    "problem": "问题",
    "milestone": "里程碑",
    "warning": "预警",
    "cannot {transition} {what}: it is {state}, and {transition} needs {sources}": (
        "无法对{what} {transition_label}：其状态为“{state_label}”，"
        "“{transition_label}”须在“{sources_label}”状态下进行"
    ),
    "{transition} needs a comment giving the reason": "“{transition_label}”须填写理由",
    "cannot {transition} {what}: {reason}": "无法对{what} {transition_label}：{reason}",
    "it has no fields": "该资源没有信息项",
    "it declares no primary key field": "该资源未声明主键信息项",
    "closure needs evidence: attach at least one file": "申请销号须有佐证材料：请至少附一个文件",
    "the verifier may not be the one who rectified it and asked for closure": (
        "核验人不能是整改并申请销号的人"
    ),
    "its warning {id} is still {state}: the problem closes only once the indicator "
    "has recovered": "其预警 {id} 仍处于“{state_label}”：指标恢复后问题方可销号",
    "consumer {code!r} already exists": "应用系统 {code!r} 已存在",
    "no credential {access_key!r}": "没有访问凭证 {access_key!r}",
    "credential {access_key} is {credential_state}": (
        "访问凭证 {access_key} 的状态为“{state_label}”"
    ),
    "credential {access_key} is already revoked": "访问凭证 {access_key} 已撤销",
    "region {region} is outside the consumer's region {home}": (
        "行政区划 {region} 超出了应用系统所属区划 {home}"
    ),
    "region {region} does not overlap resource {code}'s region {region_code}": (
        "行政区划 {region} 与数据资源 {code} 的区划 {region_code} 不相交"
    ),
    "resource {code} has no region field, so it can only be granted for its whole region "
    "{region_code}": ("数据资源 {code} 没有行政区划信息项，只能按其整个区划 {region_code} 授权"),
    "resource {code} has no field {unknown_item!r}": "数据资源 {code} 没有信息项 {unknown_item!r}",
    "{outside_item!r} is asked in clear but not among the fields": (
        "{outside_item!r} 申请明文，但不在所申请的信息项中"
    ),
    "consumer {code} is disabled": "应用系统 {code} 已停用",
    "resource {code} is not published": "数据资源 {code} 尚未发布",
    "resource {code} is 不予共享 (not shared) and cannot be applied for": (
        "数据资源 {code} 为不予共享，不能申请"
    ),
    "resource {code} is graded L4 and never leaves the platform; only verification can be "
    "applied for": ("数据资源 {code} 分级为 L4，数据不出平台；只能申请核验"),
    "resource {code} has no service registered at the gateway to call": (
        "数据资源 {code} 未在网关登记可调用的服务"
    ),
    "name the fields to read or verify": "请列出要读取或核验的信息项",
    "a grant lasts at most {value} years; apply again when it ends": (
        "授权有效期最长 {value} 年；到期后请重新申请"
    ),
    "valid_until must be today or later, and not before valid_from": (
        "有效期止须不早于今天，且不早于有效期起"
    ),
    "consumer {code} already has application {waiting} for {code2} awaiting a decision": (
        "应用系统 {code} 对 {code2} 已有待审批的申请 {waiting}"
    ),
    "{value!r} was not asked in clear; only asked fields can be approved": (
        "{value!r} 未申请明文；只能对申请了明文的信息项批准明文"
    ),
    "unknown grant action {name!r}": "未知的授权操作 {name!r}",
    "base_url must be an http:// or https:// URL": "base_url 须为 http:// 或 https:// 地址",
    "base_url takes no query, fragment or credentials": "base_url 不能包含查询串、片段或账号密码",
    "{where} is not on the operator's allow-list of service hosts "
    "(SHUZHI_GATEWAY__SERVICE_HOSTS)": (
        "{where} 不在运维方的服务主机白名单中（SHUZHI_GATEWAY__SERVICE_HOSTS）"
    ),
    "method {unknown_item!r} is not one of {join}": "方法 {unknown_item!r} 不在 {join} 之中",
    "valid_from is beyond any calendar": "有效期起超出了日历范围",
    "base_url has an invalid port": "base_url 的端口无效",
    "path pattern {path!r} must start with / and hold no .., ?, # or spaces": (
        "路径模式 {path!r} 须以 / 开头，且不含 ..、?、# 或空格"
    ),
    "catalog resource {code} already exists": "数据资源 {code} 已存在",
    "resource {code} is at version {version} now, not {version2}: someone changed it since "
    "you opened it; reload and edit again": (
        "数据资源 {code} 现为第 {version} 版而非第 {version2} "
        "版：打开后已有人修改；请刷新后重新编辑"
    ),
    "resource {code} is {state}; only draft or rejected resources can be edited (withdraw "
    "and revise a published one first)": (
        "数据资源 {code} 处于“{state_label}”；只有草稿或被退回的资源可以编辑"
        "（已发布的请先撤回再修订）"
    ),
    "{source}: expected a mapping with a 'resources' list": (
        "{source}：应为含 'resources' 列表的映射"
    ),
    "{source}{where}: not valid YAML ({problem})": "{source}{where}：不是有效的 YAML（{problem}）",
    "{source}: not valid YAML (nested too deeply)": "{source}：不是有效的 YAML（嵌套过深）",
    "{source}: resource {code} appears twice": "{source}：数据资源 {code} 出现了两次",
    "{source}: resource {label}: {value}{error_item}": (
        "{source}：数据资源 {label}：{value}{error_item}"
    ),
    "the URL may not hold spaces or control characters": "地址不能包含空格或控制字符",
    "the URL must be an http:// or https:// URL": "地址须为 http:// 或 https:// 地址",
    "the URL takes no credentials and no fragment": "地址不能包含账号密码或片段",
    "{where} is not on the operator's allow-list of webhook hosts (SHUZHI_LOOP__WEBHOOK_HOSTS)": (
        "{where} 不在运维方的 Webhook 主机白名单中（SHUZHI_LOOP__WEBHOOK_HOSTS）"
    ),
    "webhook {name!r} already exists": "Webhook {name!r} 已存在",
    "the URL has an invalid port": "地址的端口无效",
    "webhook {name} is switched off": "Webhook {name} 已关闭",
    "webhook {webhook_id} was removed while it was tested": "Webhook {webhook_id} 在测试期间被删除",
    "no problem {problem_id}": "没有问题 {problem_id}",
    "unknown region {code}": "未知的行政区划 {code}",
    "unknown indicator {code!r}": "未知的指标 {code!r}",
    "problem {code} exists already": "问题 {code} 已存在",
    "evidence {join} is not this {object_type}'s": "佐证材料 {join} 不属于该 {object_type}",
    "problem {code} is closed (销号)": "问题 {code} 已销号",
    "{object_type} {id} is {state}: no more evidence": (
        "{object_type} {id} 已处于“{state_label}”：不再接受佐证材料"
    ),
    "{filename}: evidence is at most {evidence_max_mb} MB": (
        "{filename}：佐证材料最大 {evidence_max_mb} MB"
    ),
    "{filename}: the file is empty": "{filename}：文件为空",
    "no evidence {evidence_id}": "没有佐证材料 {evidence_id}",
    "the file of evidence {evidence_id} is missing from the data directory": (
        "佐证材料 {evidence_id} 的文件不在数据目录中"
    ),
    "{transition} needs a department": "“{transition_label}”须指定部门",
    "a problem's deadline cannot be removed": "问题的整改期限不能删除",
    "reform {code} has no milestone {milestone_id}": "改革事项 {code} 没有里程碑 {milestone_id}",
    "no reform {code!r}": "没有改革事项 {code!r}",
    "{source}: expected a mapping with a 'reforms' list": "{source}：应为含 'reforms' 列表的映射",
    "{name} may not loop.ledger": "{name} 无权执行 loop.ledger",
    "{source}: reform {twice_item} appears twice": "{source}：改革事项 {twice_item} 出现了两次",
    "a check-in needs a note saying what moved": "进展填报须说明推进了什么",
    "{source}: reform {label}: {first}": "{source}：改革事项 {label}：{first}",
    "{username} holds no such grant of {role}": "{username} 没有这项 {role} 授权",
    "credit code {value!r} fails the GB 32100 check character": (
        "统一社会信用代码 {value!r} 未通过 GB 32100 校验位检查"
    ),
    "department {code} already exists": "部门 {code} 已存在",
    "department {code} is in region {region_code}, not {region}": (
        "部门 {code} 属于行政区划 {region_code}，而非 {region}"
    ),
    "{name} cannot {verb} {code} there: it does not hold {join} over that scope": (
        "{name} 不能在该范围{verb_label} {code}：其在该范围不具备 {join}"
    ),
    "username {username!r} is not allowed": "用户名 {username!r} 不符合命名规则",
    "user {username} already exists": "用户 {username} 已存在",
    "you cannot deactivate yourself": "不能停用自己的账号",
    "a token lives 1 to {MAX_TOKEN_DAYS} days": "令牌有效期为 1 至 {MAX_TOKEN_DAYS} 天",
    "no API token {token_id}": "没有 API 令牌 {token_id}",
    "malformed token": "令牌格式有误",
    "unknown token": "未知的令牌",
    "token revoked": "令牌已吊销",
    "token expired": "令牌已过期",
    "user deactivated": "用户已停用",
    "{what} clashes with an existing record: {orig}": "{what} 与已有记录冲突：{orig}",
    "{username} is the last platform administrator; grant the role to someone else first": (
        "{username} 是最后一名平台管理员；请先将该角色授予他人"
    ),
    "department {code} is under {code2}; it cannot be its parent": (
        "部门 {code} 隶属于 {code2}，不能作为其上级"
    ),
    "{name} cannot act on {username}: {username} holds {role_code} beyond what you hold": (
        "{name} 不能操作 {username}：{username} 持有超出您权限的 {role_code}"
    ),
    "{name} is empty": "{name} 为空",
    "{location} is outside the source directories ({join})": (
        "{location} 不在数据源目录（{join}）之内"
    ),
    "no source {source_id}": "没有数据源 {source_id}",
    "resource {code} is withdrawn and takes no data": "数据资源 {code} 已撤回，不再接收数据",
    "resource {code} declares no fields to load": "数据资源 {code} 未声明可加载的信息项",
    "no catalog resource {code!r}": "目录中没有数据资源 {code!r}",
    "field {field} of {code} is not flagged": "{code} 的信息项 {field} 未被标记",
    "{location!r} is not a usable path: {exc}": "{location!r} 不是可用的路径：{exc}",
    "{location!r} is not a database URL": "{location!r} 不是数据库地址",
    "source {source_id} is running on {claimed_by}": "数据源 {source_id} 正在 {claimed_by} 上运行",
    "{name} is over the upload limit of {upload_max_mb} MiB": (
        "{name} 超过了 {upload_max_mb} MiB 的上传上限"
    ),
    "cannot tell the format of {name}; give --format ({join})": (
        "无法判断 {name} 的格式；请指定 --format（{join}）"
    ),
    "cannot detect the encoding of {name} (not UTF-8 nor GBK/GB18030); give --encoding": (
        "无法识别 {name} 的编码（既非 UTF-8 也非 GBK/GB18030）；请指定 --encoding"
    ),
    "no such file: {location}": "没有这个文件：{location}",
    "the request is over the upload limit of {upload_max_mb} MiB": (
        "请求超过了上传上限 {upload_max_mb} MiB"
    ),
    "schedule {expression!r} is not a usable cron expression: {detail}": (
        "排程 {expression!r} 不是可用的 cron 表达式：{detail}"
    ),
    "the resource's update cycle ({update_cycle}) has no schedule; give a cron expression "
    "such as '0 2 * * *'": (
        "该资源的更新周期（{update_cycle_label}）没有对应排程，请给出 cron 表达式，如 '0 2 * * *'"
    ),
    "source {source_id} is being pulled by another worker": (
        "数据源 {source_id} 正由另一个工作进程拉取"
    ),
    "the source has no header row": "数据源没有表头行",
    "header cell {join} is empty; every column needs a name": (
        "表头单元格 {join} 为空；每一列都需要列名"
    ),
    "unknown source format {kind!r}; known: {join}": "未知的数据源格式 {kind!r}；支持：{join}",
    "column {name!r} appears twice in the header": "列 {name!r} 在表头中出现了两次",
    "data row {number} has {len} cells; the header has {width}": (
        "第 {number} 行数据有 {len} 个单元格；表头有 {width} 个"
    ),
    "{declared!r} is not a text encoding": "{declared!r} 不是文本编码",
    "delimiter {delimiter!r} is not usable: give one character other than a quote or a line "
    "break": ("分隔符 {delimiter!r} 不可用：请给出一个引号和换行符以外的字符"),
    "{name} does not parse: {value}": "{name} 无法解析：{value}",
    "a database source needs either --table or --query": "数据库数据源须指定 --table 或 --query",
    "unknown encoding {declared!r}": "未知的编码 {declared!r}",
    "{name} is not a readable XLSX workbook: {exc}": "{name} 不是可读取的 XLSX 工作簿：{exc}",
    "not a usable database URL: {exc}": "不是可用的数据库地址：{exc}",
    "cannot read {describe}: {reason}": "无法读取 {describe}：{reason}",
    " at byte {offset}": "（第 {offset} 字节处）",
    "{name} is not valid {encoding}{where}; give the right --encoding": (
        "{name} 不是有效的 {encoding}{where}；请指定正确的 --encoding"
    ),
    "{name} is not valid UTF-8; give --encoding": "{name} 不是有效的 UTF-8；请指定 --encoding",
    "{name} has no sheet {sheet!r}; it has {join}": (
        "{name} 没有工作表 {sheet!r}；现有工作表：{join}"
    ),
    "{name}: a row has values right of the last header column": (
        "{name}：有一行在表头最后一列的右侧还有值"
    ),
    "column {join} matches no field (fields: {join2}); map it as 'column=field', drop it as "
    "'column=', or add an alias to the field": (
        "列 {join} 对应不到任何信息项（信息项：{join2}）；请以 '列名=信息项' 映射，以 '列名=' "
        "舍弃，或为信息项添加别名"
    ),
    "field {join} is fed by more than one column": "信息项 {join} 对应了多个列",
    "the source has no column for required field {join}": "数据源中没有必填信息项 {join} 对应的列",
    "mapping {pair!r}: write it as 'column=field'": "映射 {pair!r}：请写作 '列名=信息项'",
    "mapping {header}={target}: the resource has no field {target!r}": (
        "映射 {header}={target}：数据资源没有信息项 {target!r}"
    ),
    "mapping {header}={target}: the source has no column {header!r}": (
        "映射 {header}={target}：数据源没有列 {header!r}"
    ),
    "watermark {watermark!r} is not a field": "水位信息项 {watermark!r} 不是资源的信息项",
    "an incremental load needs a primary key to upsert by": "增量加载需要主键来更新或插入",
    "{source_name} does not parse: {parse_error}": "{source_name} 无法解析：{parse_error}",
    "field {name} changed since the current snapshot was written; load the resource in full "
    "mode once, then incrementally again": (
        "信息项 {name} 在当前快照写入后已变更；请先全量加载一次，再恢复增量加载"
    ),
    "no batch {batch_id}": "没有批次 {batch_id}",
    "give an SQL query": "请给出 SQL 查询",
    "no batch {batch_id} of {code}": "{code} 没有批次 {batch_id}",
    "no department {provider!r}": "没有部门 {provider!r}",
    "{source}: expected a mapping with an 'indicators' list": (
        "{source}：应为含 'indicators' 列表的映射"
    ),
    "indicator {code} is used by {join}; change those first": (
        "指标 {code} 被 {join} 引用；请先修改它们"
    ),
    "{source}: expected a mapping with a 'targets' list": "{source}：应为含 'targets' 列表的映射",
    "{source}: missing columns {join}": "{source}：缺少列 {join}",
    "{source}: {join}{more}": "{source}：{join}{more}",
    " (and {count} more)": "（另有 {count} 条）",
    "{source}: no target rows": "{source}：没有目标值行",
    "{source}: expected a mapping with a 'rules' list": "{source}：应为含 'rules' 列表的映射",
    "unknown engine {kind!r}: use duckdb or spark": "未知的计算引擎 {kind!r}：请用 duckdb 或 spark",
    "{source}: expected a mapping with a 'goals' list": "{source}：应为含 'goals' 列表的映射",
    "{source}: goal {twice_item} appears twice": "{source}：目标 {twice_item} 出现了两次",
    "{source}: indicator {code} appears twice": "{source}：指标 {code} 出现了两次",
    "{where}: {first}": "{where}：{first}",
    "indicator {code} is still referred to (a reform's key result); remove that first": (
        "指标 {code} 仍被引用（某项改革的关键成果）；请先移除该引用"
    ),
    "unknown region {subtree}": "未知的行政区划 {subtree}",
    "{source}: not an XLSX workbook": "{source}：不是 XLSX 工作簿",
    "{source}: neither an XLSX workbook nor UTF-8 YAML": (
        "{source}：既不是 XLSX 工作簿，也不是 UTF-8 编码的 YAML"
    ),
    "rule {code}: unknown indicator {code2!r}": "规则 {code}：未知的指标 {code2!r}",
    "{where}: unknown owner department {owner}": "{where}：未知的责任部门 {owner}",
    "{source}: target #{index}: {first}": "{source}：第 {index} 个目标值：{first}",
    "{source}: resource {code}: {detail}": "{source}：数据资源 {code}：{detail}",
    "{source}: {detail}": "{source}：{detail}",
    "{source}: indicator {code}: {detail}": "{source}：指标 {code}：{detail}",
    "{source}: indicator {label}": "{source}：指标 {label}",
    "{where}: target #{index}: {detail}": "{where}：第 {index} 个目标值：{detail}",
    "target #{index}: {detail}": "第 {index} 个目标值：{detail}",
    "no region is loaded: load the region tree first": "尚未加载行政区划：请先加载区划树",
    "{source}: the workbook has no sheet named {name}": (
        "{source}：工作簿中没有名为 {name} 的工作表"
    ),
    "{name} may not {join}": "{name} 无权执行 {join}",
    "expression is longer than {EXPRESSION_MAX} characters": (
        "表达式超过了 {EXPRESSION_MAX} 个字符"
    ),
    "expression {text!r}: only + - * / ( ) over indicator codes and numbers are allowed": (
        "表达式 {text!r}：只允许对指标代码和数字使用 + - * / ( )"
    ),
    "period {text!r} is not a {value} (write it like {example})": (
        "期间 {text!r} 无效：周期类型为“{grain_label}”，请写作 {example} 的形式"
    ),
    "expression {text!r} does not parse": "表达式 {text!r} 无法解析",
    "the time column": "时间列",
    "the region column": "行政区划列",
    "the {agg} field": "{agg_label}的信息项",
    "a filter": "筛选条件",
    "{either} or {other}": "{either} 或 {other}",
    "{where}: resource {source} has no field {name} ({role})": (
        "{where}：数据资源 {source} 没有信息项 {name}（{role}）"
    ),
    "{where}: {role} {source}.{name} is {fields_item}, not {join}": (
        "{where}：{role} {source}.{name} 的类型为 {fields_item}，而非 {join}"
    ),
    "derived indicators form a cycle: {cycle}": "派生指标形成了循环引用：{cycle}",
    "derived indicators form a cycle among {sorted}": "派生指标之间形成了循环引用：{sorted}",
    "{where}: unknown resource {source}": "{where}：未知的数据资源 {source}",
    "{where}: filter on {source}.{name}: {exc}": "{where}：{source}.{name} 上的筛选条件：{exc}",
    "{where}: unknown indicator {name} in the expression": "{where}：表达式中有未知的指标 {name}",
    "{name}: state may change only through a transition, not by assignment": (
        "{name}：状态只能通过流转变更，不能直接赋值"
    ),
    "{name} has no transition {name2!r}": "{name} 没有流转 {name2!r}",
    "{name}: state may change only through a transition, not by an UPDATE statement": (
        "{name}：状态只能通过流转变更，不能用 UPDATE 语句修改"
    ),
    "a batch of {code} is already running; try again when it ends": (
        "{code} 已有一个批次在运行；请待其结束后重试"
    ),
    "{source}: rule {label}: {first}": "{source}：规则 {label}：{first}",
    "{source}: goal {label}: {first}": "{source}：目标 {label}：{first}",
    "{source}: goal {code}": "{source}：目标 {code}",
    "{where}: unknown indicator {indicator!r}": "{where}：未知的指标 {indicator!r}",
    "{where}: unknown region {region}": "{where}：未知的行政区划 {region}",
    "{where}: baseline_period {baseline_period!r} is not a year": (
        "{where}：基期 {baseline_period!r} 不是年份"
    ),
    "unknown region code {region!r}": "未知的行政区划代码 {region!r}",
    "no consumer {code!r}": "没有应用系统 {code!r}",
    "no access application {application_id}": "没有共享申请 {application_id}",
    "no grant {grant_id}": "没有共享授权 {grant_id}",
    "resource {code} has no service registered at the gateway": "数据资源 {code} 未在网关登记服务",
    "{source}:1: missing column(s) {join}": "{source}:1：缺少列 {join}",
    "no shipped region tree {name!r}; shipped: {join}": (
        "没有内置的区划树 {name!r}；内置的有：{join}"
    ),
    "{source}:{line}: not valid CSV ({exc})": "{source}:{line}：不是有效的 CSV（{exc}）",
    "{where}: {problem}": "{where}：{problem}",
    "{where}: region {code} appears twice": "{where}：行政区划 {code} 出现了两次",
    "{where}: parent {parent} of {code} is unknown": "{where}：{code} 的上级 {parent} 未知",
    "{where}: parent {parent} of {code} is not above a {level}": (
        "{where}：{code} 的上级 {parent} 不在 {level} 级之上"
    ),
    "{where}: {nesting}": "{where}：{nesting}",
    "{where}: level {raw_item!r} is not one of {choices}": (
        "{where}：级别 {raw_item!r} 不在 {choices} 之中"
    ),
    "{where}: region {code} is a {level} without parent": (
        "{where}：行政区划 {code} 是没有上级的 {level}"
    ),
    "{where}: region {code} has children and cannot move under {parent}": (
        "{where}：行政区划 {code} 有下级，不能移到 {parent} 之下"
    ),
    "unknown region code {code!r}": "未知的行政区划代码 {code!r}",
    "unknown department code {code!r}": "未知的部门代码 {code!r}",
    "unknown user {username!r}": "未知的用户 {username!r}",
    "unknown role {code!r}": "未知的角色 {code!r}",
    "light is one of green, yellow, red": "亮灯只能是 green、yellow、red 之一",
    "unknown {name} {value!r}; one of {choices}": "未知的 {name} {value!r}；可选：{choices}",
    "sort is one of {join}": "排序只能是 {join} 之一",
    "by is one of {join}": "统计维度只能是 {join} 之一",
    "unknown state {join}": "未知的状态 {join}",
    "unknown region {region}": "未知的行政区划 {region}",
    "unknown department {department}": "未知的部门 {department}",
    "no warning {warning_id}": "没有预警 {warning_id}",
    "unknown region {region!r}": "未知的行政区划 {region!r}",
    "{code} is reported by {join}, not {value}": "{code} 按 {join} 统计，而非 {value}",
    "unknown grain {grain!r}: use one of {choices}": "未知的周期类型 {grain!r}：可选 {choices}",
    "unknown system {system!r}: use one of {choices}": "未知的体系 {system!r}：可选 {choices}",
    "{name} is not a user and has no inbox": "{name} 不是用户，没有消息箱",
    "no message {notification_id} in your inbox": "您的消息箱中没有消息 {notification_id}",
    "no webhook {ref!r}": "没有 Webhook {ref!r}",
    "state is one of {choices}, not {state!r}": "状态只能是 {choices} 之一，而非 {state!r}",
    "unknown region {code!r}": "未知的行政区划 {code!r}",
    "{code} is reported by {join}; choose one of those": "{code} 按 {join} 统计；请从中选择",
    "no month has a computed value yet": "尚无任何月份有计算结果",
    "{name} may not define indicators": "{name} 无权定义指标",
    "{name} may not compute indicators": "{name} 无权计算指标",
    "{name} may not set targets of {code}": "{name} 无权设置 {code} 的目标值",
    "log in": "请登录",
    "{name} has no part in the sharing gateway": "{name} 不参与数据共享网关",
    "{name} may not apply for resources": "{name} 无权申请数据资源",
    "no application action {action!r}": "没有申请操作 {action!r}",
    "no grant action {action!r}": "没有授权操作 {action!r}",
    "no consumer action {action!r}; use enable or disable": (
        "没有应用系统操作 {action!r}；请用 enable 或 disable"
    ),
    "no credential {access_key!r} of consumer {code}": (
        "应用系统 {code} 没有访问凭证 {access_key!r}"
    ),
    "no source {source_id} of {code}": "{code} 没有数据源 {source_id}",
    "{name} may not report problems": "{name} 无权上报问题",
    "{name} may not import problems": "{name} 无权导入问题",
    "problem {problem_id} has no evidence {evidence_id}": (
        "问题 {problem_id} 没有佐证材料 {evidence_id}"
    ),
    "no webhook action {action!r}; use enable, disable or delete": (
        "没有 Webhook 操作 {action!r}；请用 enable、disable 或 delete"
    ),
    "{name} manages no users": "{name} 不管理任何用户",
    "{name} may not {action} on reform {code}": "{name} 无权对“改革事项 {code}”执行 {action}",
    "milestone {milestone_id} has no evidence {evidence_id}": (
        "里程碑 {milestone_id} 没有佐证材料 {evidence_id}"
    ),
    "as_of {text!r} is not a date (YYYY-MM-DD)": "as_of {text!r} 不是日期（YYYY-MM-DD）",
    "the form has expired or did not come from this site; reload it": (
        "表单已过期或并非来自本站；请刷新后重试"
    ),
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


def say(text: str, locale: str) -> str:
    """A service's message (``core.errors.Message``) in the reader's language: its
    template's translation filled with its values (messages among them said too). Any
    other text, or a template not translated, stays as it is."""
    if locale == "en" or not isinstance(text, Message):
        return str(text)
    template = ZH.get(text.template)
    if template is None:
        return str(text)
    return template.format(
        **{
            name: say(value, locale) if isinstance(value, Message) else value
            for name, value in text.values.items()
        }
    )
