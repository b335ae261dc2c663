// The operator console. Every text from the gateway or a device goes in through textContent
// (never as HTML); the token lives in sessionStorage and travels in the Authorization header
// only, never in a URL.
"use strict";

const DICT = {
  zh: {
    "col.cases_open": "未办结", "col.cases_overdue": "超期", "page.first": "首页", "page.next": "下一页",
    "col.units_registered": "单位数", "col.units_up": "在线", "col.patrol": "查岗", "col.patrol_answer": "最近应答",
    "patrol.waiting": "等待应答", "patrol.unconfirmed": "装置未确认", "weekly": "周报", "weekly.week": "周次",
    "title": "指挥控制台", "devices": "在线传输装置", "dev.address": "地址", "dev.peer": "来源", "dev.since": "连接时间",
    "back.cameras": "← 返回视频墙", "cam.availability": "可用率", "span.day": "近24小时（每小时）", "span.week": "近7天（每天）", "city": "全市",
    "s.fps": "帧率", "s.bitrate": "码率 kbps", "s.loss": "丢包率", "s.keyframe": "关键帧间隔 s",
    "s.codec": "编码", "s.size": "分辨率", "s.reconnects": "重连次数", "s.last_error": "最后错误", "s.device": "国标设备", "nav.admin": "系统", "today.alarms": "今日火警", "ranking": "考核排名（近7天）", "any.kind": "全部类型", "any.township": "全部乡镇",
    "state.overdue": "已超期", "sound": "火警提示音", "dead.title": "死信", "dead.replay": "全部重投",
    "dead.error": "最后错误", "quarantine": "未登记单位", "q.protocol": "协议", "q.messages": "消息数",
    "stat.events": "存储事件", "stat.pending": "待送达", "stat.dead": "死信", "due.in": "剩余", "due.late": "已超期",
    "role.admin": "管理员", "role.township": "乡镇", "role.department": "部门", "role.ingest": "接入", "nav.cameras": "视频", "nav.units": "单位", "nav.reports": "报表", "any.state": "全部状态",
    "any.picture": "全部画面", "cam.online": "在线", "cam.offline": "离线", "cam.stalled": "中断",
    "cam.degraded": "降级", "cam.unknown": "未知", "pic.failing": "画面异常", "pic.clear": "画面正常",
    "check.black": "黑屏", "check.frozen": "冻结", "check.blurred": "模糊", "check.occluded": "遮挡",
    "check.underexposed": "过暗", "check.overexposed": "过亮", "check.low_contrast": "低对比度", "check.color_cast": "偏色", "check.scene_changed": "画面偏移",
    "col.unit": "单位", "col.online": "在线", "col.last_seen": "最后通信", "yes": "是", "no": "否",
    "patrol": "查岗", "patrol.sent": "已发送查岗", "rep.from": "自", "rep.to": "至", "rep.view": "查看",
    "col.rank": "排名", "col.score": "得分", "nav.overview": "总览", "nav.events": "事件", "signout": "退出",
    "signin.title": "登录", "signin.token": "访问令牌", "signin.submit": "登录",
    "signin.bad": "令牌无效", "signin.name": "值班人员", "back": "← 返回事件列表",
    "history": "处置记录", "f.kind": "类型", "f.township": "乡镇", "f.occurred": "发生时间",
    "f.address": "地址", "f.state": "状态", "f.due": "下一期限", "f.source": "来源",
    "act.sign": "签收", "act.assign": "交办", "act.accept": "接收", "act.feedback": "反馈",
    "act.close": "办结", "act.reopen": "重新打开", "act.to": "部门代码", "act.note": "说明",
    "act.relearn": "重新学习画面基准", "s.picture": "画面诊断", "s.baseline": "画面基准",
    "base.learning": "学习中", "base.learned": "已学习", "base.off": "未启用", "base.moving": "学习时画面不稳定，不判断画面偏移", "pic.ok": "正常",
    "act.reason": "原因", "act.verdict": "结论", "overdue": "已超期",
    "verdict.true_alarm": "真实火警", "verdict.false_alarm": "误报", "verdict.test": "测试",
    "verdict.fault": "设备故障", "verdict.repaired": "已修复", "verdict.no_fault": "无故障",
    "verdict.other": "其他", "col.township": "乡镇", "col.units_online": "联网率",
    "col.cameras_online": "在线率", "col.cameras_intact": "完好率", "col.pending": "待送达",
    "col.time": "时间", "col.kind": "类型", "col.title": "内容", "col.state": "状态",
    "live.on": "实时：已连接", "live.off": "实时：重连中…", "lang": "English",
    "kind.fire.alarm": "火警", "kind.fire.fault": "故障", "kind.fire.supervisory": "监管",
    "kind.fire.disabled": "屏蔽", "kind.fire.linkage_started": "联动启动",
    "kind.fire.linkage_feedback": "联动反馈", "kind.fire.power_fault": "电源故障",
    "kind.fire.reset": "复位", "kind.fire.operation": "操作", "kind.fire.analog_threshold": "模拟量越限",
    "kind.unit.offline": "单位离线", "kind.unit.online": "单位上线",
    "kind.camera.offline": "摄像机离线", "kind.camera.online": "摄像机上线",
    "kind.camera.stalled": "视频中断", "kind.camera.degraded": "视频降级",
    "kind.camera.quality": "图像质量", "kind.camera.tamper": "遮挡/破坏", "kind.camera.motion": "移动侦测",
    "kind.camera.alarm": "视频报警",
    "kind.event.escalated": "升级", "kind.event.evidence": "证据", "kind.event.updated": "处置更新",
    "kind.event.assigned": "交办", "kind.event.overdue": "督办", "kind.report.weekly": "周报",
    "state.open": "待签收", "state.signed": "已签收", "state.assigned": "已交办",
    "state.accepted": "已接收", "state.handled": "已反馈", "state.closed": "已办结",
  },
  en: {
    "col.cases_open": "Open cases", "col.cases_overdue": "Overdue", "page.first": "First page", "page.next": "Next page",
    "col.units_registered": "Units", "col.units_up": "Online", "col.patrol": "Patrol", "col.patrol_answer": "Last answer",
    "patrol.waiting": "waiting", "patrol.unconfirmed": "not confirmed by the device", "weekly": "Weekly reports", "weekly.week": "Week",
    "title": "Command console", "devices": "Connected devices", "dev.address": "Address", "dev.peer": "From", "dev.since": "Since",
    "back.cameras": "← Back to the wall", "cam.availability": "Availability", "span.day": "24 h, hourly", "span.week": "7 days, daily", "city": "City",
    "s.fps": "fps", "s.bitrate": "kbps", "s.loss": "Loss", "s.keyframe": "Keyframe interval s",
    "s.codec": "Codec", "s.size": "Size", "s.reconnects": "Reconnects", "s.last_error": "Last error", "s.device": "GB/T 28181 device", "nav.admin": "Admin", "today.alarms": "Fire alarms today", "ranking": "Ranking (last 7 days)", "any.kind": "Any kind", "any.township": "Any township",
    "state.overdue": "Overdue", "sound": "Alarm sound", "dead.title": "Dead letters", "dead.replay": "Replay all",
    "dead.error": "Last error", "quarantine": "Unknown units", "q.protocol": "Protocol", "q.messages": "Messages",
    "stat.events": "Events stored", "stat.pending": "Pending", "stat.dead": "Dead letters", "due.in": "due in", "due.late": "late by",
    "role.admin": "admin", "role.township": "township", "role.department": "department", "role.ingest": "ingest", "nav.cameras": "Cameras", "nav.units": "Units", "nav.reports": "Reports", "any.state": "Any state",
    "any.picture": "Any picture", "cam.online": "Online", "cam.offline": "Offline", "cam.stalled": "Stalled",
    "cam.degraded": "Degraded", "cam.unknown": "Unknown", "pic.failing": "Picture failing", "pic.clear": "Picture clear",
    "check.black": "Black", "check.frozen": "Frozen", "check.blurred": "Blurred", "check.occluded": "Occluded",
    "check.underexposed": "Too dark", "check.overexposed": "Too bright", "check.low_contrast": "Low contrast", "check.color_cast": "Colour cast", "check.scene_changed": "View moved",
    "col.unit": "Unit", "col.online": "Online", "col.last_seen": "Last seen", "yes": "yes", "no": "no",
    "patrol": "Patrol check", "patrol.sent": "Patrol check sent", "rep.from": "From", "rep.to": "To", "rep.view": "View",
    "col.rank": "Rank", "col.score": "Score", "nav.overview": "Overview", "nav.events": "Events", "signout": "Sign out",
    "signin.title": "Sign in", "signin.token": "Access token", "signin.submit": "Sign in",
    "signin.bad": "Unknown token", "signin.name": "Duty officer", "back": "← Back to events",
    "history": "History", "f.kind": "Kind", "f.township": "Township", "f.occurred": "Occurred",
    "f.address": "Address", "f.state": "State", "f.due": "Next deadline", "f.source": "Source",
    "act.sign": "Sign", "act.assign": "Assign", "act.accept": "Accept", "act.feedback": "Feedback",
    "act.close": "Close", "act.reopen": "Reopen", "act.to": "Department code", "act.note": "Note",
    "act.relearn": "Relearn picture baseline", "s.picture": "Picture checks", "s.baseline": "Picture baseline",
    "base.learning": "learning", "base.learned": "learned", "base.off": "off", "base.moving": "the view moved while learning: scene changes not judged", "pic.ok": "clear",
    "act.reason": "Reason", "act.verdict": "Verdict", "overdue": "overdue",
    "verdict.true_alarm": "True alarm", "verdict.false_alarm": "False alarm", "verdict.test": "Test",
    "verdict.fault": "Device fault", "verdict.repaired": "Repaired", "verdict.no_fault": "No fault",
    "verdict.other": "Other", "col.township": "Township", "col.units_online": "Units online",
    "col.cameras_online": "Cameras online", "col.cameras_intact": "Intact", "col.pending": "Pending",
    "col.time": "Time", "col.kind": "Kind", "col.title": "Title", "col.state": "State",
    "live.on": "Live: connected", "live.off": "Live: reconnecting…", "lang": "中文",
    "kind.fire.alarm": "Fire alarm", "kind.fire.fault": "Fault", "kind.fire.supervisory": "Supervisory",
    "kind.fire.disabled": "Disabled", "kind.fire.linkage_started": "Linkage started",
    "kind.fire.linkage_feedback": "Linkage feedback", "kind.fire.power_fault": "Power fault",
    "kind.fire.reset": "Reset", "kind.fire.operation": "Operation", "kind.fire.analog_threshold": "Threshold",
    "kind.unit.offline": "Unit offline", "kind.unit.online": "Unit online",
    "kind.camera.offline": "Camera offline", "kind.camera.online": "Camera online",
    "kind.camera.stalled": "Camera stalled", "kind.camera.degraded": "Camera degraded",
    "kind.camera.quality": "Picture", "kind.camera.tamper": "Tamper", "kind.camera.motion": "Motion",
    "kind.camera.alarm": "Camera alarm",
    "kind.event.escalated": "Escalated", "kind.event.evidence": "Evidence", "kind.event.updated": "Updated",
    "kind.event.assigned": "Assigned", "kind.event.overdue": "Overdue", "kind.report.weekly": "Weekly report",
    "state.open": "Open", "state.signed": "Signed", "state.assigned": "Assigned",
    "state.accepted": "Accepted", "state.handled": "Handled", "state.closed": "Closed",
  },
};

let lang = sessionStorage.getItem("lang") || "zh";
const t = (key) => DICT[lang][key] ?? DICT.zh[key] ?? key;
const $ = (id) => document.getElementById(id);

function translate() {
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  for (const el of document.querySelectorAll("[data-t]")) el.textContent = t(el.dataset.t);
  $("lang").textContent = t("lang");
}

function token() { return sessionStorage.getItem("token"); }

async function api(path) {
  const r = await fetch(path, { headers: { Authorization: "Bearer " + token() } });
  if (r.status === 401) { signOut(); throw new Error("unauthorized"); }
  if (!r.ok) throw new Error(path + ": " + r.status);
  return r.json();
}

async function post(path, body) {
  const r = await fetch(path, {
    method: "POST",
    headers: { Authorization: "Bearer " + token(), "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  const answer = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error((answer.error && answer.error.message) || String(r.status));
  return answer;
}

function el(tag, text, attrs) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = text;
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  return e;
}

function cell(row, text) {
  const td = document.createElement("td");
  td.textContent = text ?? "";
  row.appendChild(td);
  return td;
}

// Days and times as the gateway counts them (its UTC offset, from whoami), whatever the
// browser's own time zone.
function offsetMinutes() {
  const m = /^([+-])(\d\d):(\d\d)$/.exec(me.utc_offset || "");
  return m ? (m[1] === "-" ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3])) : -new Date().getTimezoneOffset();
}
function offsetText() {
  const m = offsetMinutes(), a = Math.abs(m);
  return (m < 0 ? "-" : "+") + String(Math.floor(a / 60)).padStart(2, "0") + ":" + String(a % 60).padStart(2, "0");
}
// The gateway's wall-clock time of `ms` as "YYYY-MM-DD HH:MM".
function clock(ms) { return new Date(ms + offsetMinutes() * 60e3).toISOString().slice(0, 16).replace("T", " "); }
// The start of the gateway's day `back` days before today, as an ISO time.
function dayStart(back) {
  const today = new Date(Date.now() + offsetMinutes() * 60e3).toISOString().slice(0, 10);
  return new Date(new Date(today + "T00:00:00" + offsetText()).getTime() - back * 86400e3).toISOString();
}

function percent(x) { return typeof x === "number" ? (x * 100).toFixed(1) + "%" : "—"; }

async function showOverview() {
  const data = await api("/api/v1/townships");
  const body = $("townships");
  body.replaceChildren();
  const sum = (k) => data.townships.reduce((n, tw) => n + (tw[k] || 0), 0);
  const city = {
    name: t("city"), code: "city", cameras_registered: sum("cameras_registered"),
    unit_online_ratio: sum("units_registered") ? sum("units_online") / sum("units_registered") : null,
    camera_online_ratio: sum("cameras_registered") ? sum("cameras_online") / sum("cameras_registered") : null,
    camera_integrity_ratio: sum("cameras_registered") ? sum("cameras_intact") / sum("cameras_registered") : null,
    pending_deliveries: sum("pending_deliveries"),
    cases_open: sum("cases_open"), cases_overdue: sum("cases_overdue"),
  };
  const rows = data.townships.length > 1 ? [...data.townships, city] : data.townships;
  for (const tw of rows) {
    const row = document.createElement("tr");
    cell(row, tw.name + " (" + tw.code + ")");
    cell(row, percent(tw.unit_online_ratio));
    const cams = tw.cameras_registered > 0;
    cell(row, cams ? percent(tw.camera_online_ratio) : "—");
    cell(row, cams ? percent(tw.camera_integrity_ratio) : "—");
    cell(row, String(tw.cases_open ?? 0));
    const late = cell(row, String(tw.cases_overdue ?? 0));
    if (tw.cases_overdue > 0) late.classList.add("error");
    cell(row, String(tw.pending_deliveries ?? 0));
    if (tw === city) row.classList.add("total");
    body.appendChild(row);
  }
  const day = await api("/api/v1/reports/assessment?format=json&from=" + encodeURIComponent(dayStart(0)));
  const alarms = day.townships.reduce((n, tw) => n + ((tw.events.by_kind || {})["fire.alarm"] || 0), 0);
  $("today-alarms").textContent = String(alarms);
  // today and the six days before it, from midnight: the same window all day long, so the
  // gateway answers it from its cache
  const week = dayStart(6);
  const report = await api("/api/v1/reports/assessment?format=json&from=" + encodeURIComponent(week));
  const ranked = report.townships.filter((tw) => tw.rank).sort((a, b) => a.rank - b.rank);
  $("ranking").replaceChildren(...ranked.map((tw) =>
    el("li", tw.name + " · " + (typeof tw.score === "number" ? tw.score.toFixed(1) : "—"))));
}

function eventRow(e, fresh) {
  const row = document.createElement("tr");
  row.dataset.id = e.id;
  if (e.kind === "fire.alarm") row.classList.add("fire-alarm");
  if (fresh) row.classList.add("new");
  cell(row, (e.occurred_at || "").replace("T", " ").slice(0, 19));
  cell(row, t("kind." + e.kind));
  const title = cell(row, e.title);
  cell(row, e.township && (e.township.name || e.township.code));
  cell(row, e.state ? t("state." + e.state) : "");
  row.addEventListener("click", () => { location.hash = "#event/" + e.id; });
  if (fresh) rowPicture(e, title).catch(() => {});
  return row;
}

// An event arriving live shows its first snapshot in its row. A fire alarm's pictures are
// attached just after it is committed (within the linkage deadline), so it is looked up
// again for a few seconds until they are there.
async function rowPicture(e, into) {
  let ev = e;
  for (let i = 0; i < 10 && e.kind === "fire.alarm" && !(ev.evidence && ev.evidence.length); i++) {
    await new Promise((ok) => setTimeout(ok, 300));
    ev = await api("/api/v1/events/" + encodeURIComponent(e.id)).catch(() => ev);
  }
  if (!(ev.evidence && ev.evidence.length)) return;
  const img = await picture(ev.evidence[0].url);
  if (img) { img.classList.add("thumb"); into.append(img); }
}

const VERDICTS = {
  fire: ["true_alarm", "false_alarm", "test", "fault"],
  other: ["repaired", "no_fault", "other"],
};

function fact(list, key, value) {
  if (value === undefined || value === null || value === "") return;
  list.append(el("dt", t(key)), el("dd", value));
}

// Evidence pictures come through the API with the token, shown as blob: URLs.
async function picture(url) {
  const r = await fetch(url, { headers: { Authorization: "Bearer " + token() } });
  if (!r.ok) return null;
  return el("img", null, { src: URL.createObjectURL(await r.blob()), alt: url.split("/").pop() });
}

function actionButton(label, run) {
  const b = el("button", t(label), { type: "button" });
  b.addEventListener("click", async () => {
    $("ev-error").textContent = "";
    try { await run(); await showEvent(currentEvent); } catch (e) { $("ev-error").textContent = e.message; }
  });
  return b;
}

function actions(e) {
  const box = $("ev-actions");
  box.replaceChildren();
  const id = encodeURIComponent(e.id);
  const by = sessionStorage.getItem("name") || "值班员";
  const step = (what, extra) => post("/api/v1/events/" + id + "/" + what, { by, ...extra });
  const stage = e.state;
  if (!stage) return;
  const township = me.scope === "admin" || me.scope === "township";
  const department = me.scope === "admin" || me.scope === "department";
  if (stage === "open" && township) box.append(actionButton("act.sign", () => step("sign")));
  if (stage === "signed" && township) {
    const to = el("input", null, { placeholder: t("act.to"), id: "act-to", maxlength: "64" });
    box.append(to, actionButton("act.assign", () => step("assign", { to: to.value.trim() })));
  }
  if (stage === "assigned" && department) box.append(actionButton("act.accept", () => step("accept")));
  if ((stage === "signed" && township) || (stage === "accepted" && department)) {
    const verdict = el("select", null, { id: "act-verdict" });
    const family = e.kind.startsWith("fire.") ? VERDICTS.fire : VERDICTS.other;
    for (const v of family) verdict.append(el("option", t("verdict." + v), { value: v }));
    const note = el("input", null, { placeholder: t("act.note"), id: "act-note", maxlength: "2000" });
    box.append(verdict, note,
      actionButton("act.feedback", () => step("feedback", { verdict: verdict.value, note: note.value })));
  }
  if (stage === "handled" && township) box.append(actionButton("act.close", () => step("close")));
  if (stage === "closed" && township) {
    const reason = el("input", null, { placeholder: t("act.reason"), id: "act-reason", maxlength: "2000" });
    box.append(reason, actionButton("act.reopen", () => step("reopen", { reason: reason.value })));
  }
}

// A page of the wall: 100 cameras from the cursor `wallAt` (null: the first page).
let wallAt = null, wallNext = null;
async function showCameras() {
  townshipChoices();
  const q = new URLSearchParams({ limit: "100" });
  if (wallAt) q.set("after", wallAt);
  if ($("cam-township").value) q.set("township", $("cam-township").value);
  if ($("cam-state").value) q.set("state", $("cam-state").value);
  if ($("cam-picture").value) q.set("picture", $("cam-picture").value);
  const data = await api("/api/v1/cameras?" + q);
  wallNext = data.next;
  $("wall-next").disabled = !wallNext;
  const cards = data.cameras.map((c) => {
    const card = el("div", null, { class: "card", "data-camera": c.id });
    card.addEventListener("click", () => { location.hash = "#camera/" + c.id; });
    const img = el("img", null, { alt: c.name });
    card.append(img, el("div", c.name));
    const badge = el("span", t("cam." + c.state), { class: "badge " + c.state });
    card.append(badge);
    const failing = (c.picture && c.picture.failing) || [];
    if (failing.length) card.append(el("div", failing.map((f) => t("check." + f)).join(" "), { class: "failing" }));
    if (c.state === "online") {
      img.classList.add("live");
      fetch("/api/v1/cameras/" + encodeURIComponent(c.id) + "/snapshot.jpg?width=320", {
        headers: { Authorization: "Bearer " + token() },
      }).then((r) => (r.ok ? r.blob() : null)).then((b) => { if (b) img.src = URL.createObjectURL(b); }).catch(() => {});
    }
    return card;
  });
  $("wall").replaceChildren(...cards);
}

// The last patrol check of a unit: when it was answered and how fast, or why not.
function patrolText(p) {
  if (!p) return "—";
  if (typeof p.response_s === "number") return (p.answered_at || "").replace("T", " ").slice(0, 19) + " · " + p.response_s.toFixed(0) + " s";
  return p.unconfirmed ? t("patrol.unconfirmed") : t("patrol.waiting");
}

function unitRow(u) {
  const row = document.createElement("tr");
  cell(row, u.name + " (" + u.id + ")");
  cell(row, u.township);
  cell(row, u.online ? t("yes") : t("no"));
  cell(row, u.last_seen ? u.last_seen.replace("T", " ").slice(0, 19) : "—");
  const td = cell(row, "");
  const answer = cell(row, patrolText(u.last_patrol));
  if (u.gb26875_address !== null && u.gb26875_address !== undefined) {
    const b = el("button", t("patrol"), { type: "button" });
    b.addEventListener("click", async () => {
      $("unit-error").textContent = "";
      try {
        await post("/api/v1/units/" + encodeURIComponent(u.id) + "/patrol-check", { timeout_min: 10 });
        b.textContent = t("patrol.sent");
        watchPatrol(u.id, answer);
      } catch (e) { $("unit-error").textContent = e.message; }
    });
    td.append(b);
  }
  return row;
}

// After a patrol check is sent, its answer is looked for every 2 s for up to 10 minutes.
function watchPatrol(id, into) {
  const until = Date.now() + 600e3;
  const look = async () => {
    const p = await api("/api/v1/units/" + encodeURIComponent(id) + "/patrol-check").catch(() => null);
    into.textContent = patrolText(p);
    if (p && (typeof p.response_s === "number" || p.unconfirmed)) return;
    if (Date.now() < until && !$("units").hidden) setTimeout(look, 2000);
  };
  look();
}

let unitsAt = null, unitsNext = null;
async function showUnits() {
  townshipChoices();
  api("/api/v1/townships").then((d) => {
    $("unit-rates").replaceChildren(...d.townships.map((tw) => {
      const row = document.createElement("tr");
      cell(row, tw.name + " (" + tw.code + ")");
      cell(row, String(tw.units_registered));
      cell(row, String(tw.units_online));
      cell(row, percent(tw.unit_online_ratio));
      return row;
    }));
  }).catch(() => {});
  api("/api/v1/gb26875/devices").then((d) => {
    $("device-rows").replaceChildren(...d.devices.map((x) => {
      const row = document.createElement("tr");
      cell(row, String(x.address));
      cell(row, x.unit);
      cell(row, x.peer);
      cell(row, x.since);
      return row;
    }));
  }).catch(() => $("device-rows").replaceChildren());
  const q = new URLSearchParams({ limit: "100" });
  if (unitsAt) q.set("after", unitsAt);
  if ($("unit-township").value) q.set("township", $("unit-township").value);
  if ($("unit-online").value) q.set("online", $("unit-online").value);
  const data = await api("/api/v1/units?" + q);
  unitsNext = data.next;
  $("units-next").disabled = !unitsNext;
  $("unit-rows").replaceChildren(...data.units.map(unitRow));
}

function period() {
  const day = (v) => (v ? new Date(v + "T00:00:00" + offsetText()).toISOString() : null);
  const q = new URLSearchParams();
  const from = day($("rep-from").value), to = day($("rep-to").value);
  if (from) q.set("from", from);
  if (to) q.set("to", to);
  return q;
}

async function showReport() {
  $("rep-error").textContent = "";
  showWeekly().catch(() => {});
  const q = period();
  q.set("format", "json");
  const r = await api("/api/v1/reports/assessment?" + q);
  $("rep-rows").replaceChildren(...r.townships.map((tw) => {
    const row = document.createElement("tr");
    cell(row, tw.rank ?? "—");
    cell(row, tw.name);
    cell(row, typeof tw.score === "number" ? tw.score.toFixed(1) : "—");
    return row;
  }));
}

// A report file fetched with the token and offered as a download (blob: URL).
async function save(url, name) {
  $("rep-error").textContent = "";
  const r = await fetch(url, { headers: { Authorization: "Bearer " + token() } });
  if (!r.ok) { $("rep-error").textContent = String(r.status); return; }
  const a = el("a", null, { href: URL.createObjectURL(await r.blob()), download: name, id: "rep-file" });
  document.body.append(a);
  a.click();
  a.remove();
}

function download(format) {
  const q = period();
  q.set("format", format);
  return save("/api/v1/reports/assessment?" + q, "assessment." + format);
}

// The weekly reports the gateway made (admin only), each with its files.
async function showWeekly() {
  $("weekly-box").hidden = me.scope !== "admin";
  if (me.scope !== "admin") return;
  const list = await api("/api/v1/reports");
  $("weekly-rows").replaceChildren(...list.reports.map((w) => {
    const row = document.createElement("tr");
    cell(row, w.name);
    cell(row, (w.from || "").slice(0, 10));
    cell(row, (w.to || "").slice(0, 10));
    const td = cell(row, "");
    for (const [format, url] of Object.entries(w.files || {})) {
      const b = el("button", format.toUpperCase(), { type: "button" });
      b.addEventListener("click", () => save(url, url.split("/").pop()));
      td.append(b);
    }
    return row;
  }));
}

async function showAdmin() {
  $("admin-error").textContent = "";
  const stats = await api("/api/v1/outbox/stats");
  const dl = $("outbox-stats");
  dl.replaceChildren();
  fact(dl, "stat.events", String(stats.events));
  fact(dl, "stat.pending", String(stats.pending));
  fact(dl, "stat.dead", String(stats.dead_letters));
  const dead = await api("/api/v1/outbox/dead-letters?limit=100");
  $("dead-rows").replaceChildren(...dead.events.map((e) => {
    const row = document.createElement("tr");
    cell(row, e.occurred_at);
    cell(row, e.township && e.township.code);
    cell(row, t("kind." + e.kind));
    cell(row, e.delivery && e.delivery.last_error);
    return row;
  }));
  const q = await api("/api/v1/quarantine").catch(() => ({ units: [] }));
  $("quarantine-rows").replaceChildren(...(q.units || []).map((u) => {
    const row = document.createElement("tr");
    cell(row, u.unit);
    cell(row, u.protocol);
    cell(row, String(u.messages));
    cell(row, u.last_seen);
    return row;
  }));
}

// The calling token: its scope decides which steps the event page offers.
let me = { scope: "admin" };

const SVG = "http://www.w3.org/2000/svg";
function svg(tag, attrs) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  return e;
}

// A camera: its stream's figures and its availability hour by hour over the last day, or day
// by day over the last week.
let span = { n: 24, ms: 3600e3 };
async function showCamera(id) {
  const c = await api("/api/v1/cameras/" + encodeURIComponent(id));
  $("cam-title").textContent = c.name + " · " + t("cam." + c.state);
  const dl = $("cam-facts");
  dl.replaceChildren();
  fact(dl, "f.township", c.township);
  fact(dl, "s.fps", c.fps && c.fps.toFixed(1));
  fact(dl, "s.bitrate", c.bitrate_kbps && c.bitrate_kbps.toFixed(0));
  fact(dl, "s.loss", typeof c.loss_ratio === "number" ? (c.loss_ratio * 100).toFixed(2) + "%" : "");
  fact(dl, "s.keyframe", c.keyframe_interval_s && c.keyframe_interval_s.toFixed(1));
  fact(dl, "s.codec", c.codec);
  fact(dl, "s.size", c.width ? c.width + "×" + c.height : "");
  fact(dl, "s.reconnects", String(c.reconnects ?? 0));
  fact(dl, "s.last_error", c.last_error);
  fact(dl, "s.device", c.device);
  if (c.picture) {
    const failing = c.picture.failing || [];
    fact(dl, "s.picture", failing.length ? failing.map((f) => t("check." + f)).join(" ") : t("pic.ok"));
    const p = c.picture;
    const progress = p.baseline === "learning" ? " " + p.baseline_progress + "/" + p.baseline_needed : "";
    const moving = p.view_steady === false ? " (" + t("base.moving") + ")" : "";
    fact(dl, "s.baseline", t("base." + p.baseline) + progress + moving);
  }
  $("cam-relearn").dataset.camera = id;
  const now = Date.now();
  const hours = [...Array(span.n).keys()].map((h) => now - (span.n - h) * span.ms);
  const answers = await Promise.all(hours.map((from) => {
    const q = new URLSearchParams({ from: new Date(from).toISOString(), to: new Date(from + span.ms).toISOString() });
    return api("/api/v1/cameras/" + encodeURIComponent(id) + "/availability?" + q).catch(() => null);
  }));
  const chart = svg("svg", { width: span.n * 22, height: 120, role: "img", id: "cam-svg" });
  answers.forEach((a, i) => {
    const v = a && typeof a.availability === "number" ? a.availability : null;
    const h = v === null ? 2 : Math.max(2, v * 100);
    const bar = svg("rect", { x: i * 22 + 2, y: 110 - h, width: 18, height: h,
      fill: v === null ? "#ccc" : v >= 0.99 ? "#2e7d32" : v >= 0.9 ? "#ef6c00" : "#c62828" });
    bar.append(svg("title", {}));
    bar.firstChild.textContent = clock(hours[i]) + " · " + (v === null ? "—" : (v * 100).toFixed(1) + "%");
    chart.append(bar);
  });
  $("cam-chart").replaceChildren(chart);
}

let currentEvent = null;
// The next deadline, counted down each second.
function countdown() {
  const dd = $("ev-due");
  if (!dd) return;
  const left = Math.round((new Date(dd.dataset.due) - Date.now()) / 1000);
  const abs = Math.abs(left);
  const span = Math.floor(abs / 60) + ":" + String(abs % 60).padStart(2, "0");
  dd.textContent = dd.dataset.due + " · " + (left >= 0 ? t("due.in") + " " + span : t("due.late") + " " + span);
  dd.classList.toggle("error", left < 0);
}
setInterval(countdown, 1000);

async function showEvent(id) {
  currentEvent = id;
  const e = await api("/api/v1/events/" + encodeURIComponent(id));
  $("ev-title").textContent = e.title;
  $("ev-title").classList.toggle("fire-alarm", e.kind === "fire.alarm");
  const facts = $("ev-facts");
  facts.replaceChildren();
  fact(facts, "f.kind", t("kind." + e.kind));
  fact(facts, "f.township", e.township && (e.township.name || e.township.code));
  fact(facts, "f.source", e.source && (e.source.name + " (" + e.source.id + ")"));
  fact(facts, "f.occurred", e.occurred_at);
  fact(facts, "f.address", e.location && e.location.address);
  fact(facts, "f.state", e.state ? t("state." + e.state) : "");
  if (e.due && e.due.next) {
    const dd = el("dd", "", { id: "ev-due" });
    dd.dataset.due = e.due.next;
    facts.append(el("dt", t("f.due")), dd);
    countdown();
  }
  const pictures = await Promise.all((e.evidence || []).map((x) => picture(x.url)));
  $("ev-evidence").replaceChildren(...pictures.filter(Boolean));
  const history = (e.case && e.case.history) || [];
  $("ev-history").replaceChildren(...history.map((h) => {
    const what = [h.at, t("act." + h.action) || h.action, h.by, h.to, h.verdict && t("verdict." + h.verdict), h.note || h.reason];
    return el("li", what.filter(Boolean).join(" · "));
  }));
  actions(e);
}

async function showEvents() {
  const q = new URLSearchParams({ limit: "200", state: $("f-state").value || "open" });
  if ($("f-kind").value) q.set("kind", $("f-kind").value);
  if ($("f-township").value) q.set("township", $("f-township").value);
  townshipChoices();
  const data = await api("/api/v1/events?" + q);
  const body = $("event-rows");
  body.replaceChildren(...data.events.reverse().map((e) => eventRow(e, false)));
}

// The township filters list the townships the token may see (once).
const TOWNSHIP_FILTERS = ["f-township", "cam-township", "unit-township"];
let choices = false;
function townshipChoices() {
  if (choices || me.scope === "department") return;
  choices = true;
  api("/api/v1/townships").then((d) => {
    for (const id of TOWNSHIP_FILTERS) {
      for (const tw of d.townships) $(id).append(el("option", tw.name, { value: tw.code }));
    }
  }).catch(() => { choices = false; });
}

// Server-Sent Events read through fetch, so the token stays in a header.
let live = null;
async function follow() {
  if (live) return;
  live = new AbortController();
  while (live && !live.signal.aborted) {
    try {
      const r = await fetch("/api/v1/events/stream", {
        headers: { Authorization: "Bearer " + token() }, signal: live.signal,
      });
      if (!r.ok) throw new Error("stream " + r.status);
      $("live").textContent = t("live.on");
      const reader = r.body.getReader();
      const text = new TextDecoder();
      let buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += text.decode(value, { stream: true });
        let end;
        while ((end = buf.indexOf("\n\n")) >= 0) {
          onMessage(buf.slice(0, end));
          buf = buf.slice(end + 2);
        }
      }
    } catch (e) {
      if (live && live.signal.aborted) return;
    }
    $("live").textContent = t("live.off");
    await new Promise((ok) => setTimeout(ok, 2000));
  }
}

function onMessage(block) {
  const data = block.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trimStart()).join("\n");
  if (!data) return;
  let e;
  try { e = JSON.parse(data); } catch { return; }
  if (!e.id || !e.kind) return;
  const kind = $("f-kind").value;
  if (kind && kind !== e.kind) return;
  const township = $("f-township").value;
  if (township && e.township && township !== e.township.code) return;
  $("event-rows").prepend(eventRow(e, true));
  if (e.kind === "fire.alarm" && $("f-sound").checked) beep();
}

// A short tone made in the page (no audio file to fetch).
let audio = null;
function beep() {
  try {
    audio = audio || new AudioContext();
    const osc = audio.createOscillator();
    const gain = audio.createGain();
    osc.frequency.value = 880;
    gain.gain.value = 0.2;
    osc.connect(gain).connect(audio.destination);
    osc.start();
    osc.stop(audio.currentTime + 0.6);
  } catch (_) { /* no audio here */ }
}

const PAGES = {
  overview: showOverview, events: showEvents, cameras: showCameras, units: showUnits,
  reports: showReport, admin: showAdmin,
};

// The pages a scope may open: a department works on what is assigned to it.
function allowed() {
  if (me.scope === "department") return ["events"];
  return Object.keys(PAGES).filter((p) => p !== "admin" || me.scope === "admin");
}

function route() {
  const hash = location.hash;
  const pages = allowed();
  const page = hash.startsWith("#event/") ? "event" : hash.startsWith("#camera/") ? "camera"
    : (pages.includes(hash.slice(1)) ? hash.slice(1) : pages[0]);
  for (const id of [...Object.keys(PAGES), "event", "camera"]) $(id).hidden = id !== page;
  for (const a of document.querySelectorAll("#nav a")) a.classList.toggle("active", a.hash === "#" + page);
  if (page === "event") showEvent(decodeURIComponent(hash.slice(7))).catch((e) => { $("ev-error").textContent = e.message; });
  else if (page === "camera") showCamera(decodeURIComponent(hash.slice(8))).catch(() => {});
  // a mark when the page's data is on screen (read by the benchmark: docs/benchmarks.md)
  else PAGES[page]().then(() => performance.mark("console:" + page)).catch(() => {});
  if (page === "events") follow();
}

async function signedIn() {
  $("signin").hidden = true;
  try { me = await api("/api/v1/whoami"); } catch (_) { return; }
  $("whoami").textContent = (sessionStorage.getItem("name") || me.name) + " · " + t("role." + me.scope) + (me.code ? " " + me.code : "");
  for (const a of document.querySelectorAll("#nav a")) a.hidden = !allowed().includes(a.hash.slice(1));
  $("nav").hidden = false;
  $("signout").hidden = false;
  route();
}

function signOut() {
  sessionStorage.removeItem("token");
  choices = false;
  for (const id of TOWNSHIP_FILTERS) $(id).replaceChildren($(id).firstElementChild);
  if (live) { live.abort(); live = null; }
  for (const id of [...Object.keys(PAGES), "event", "camera", "nav", "signout"]) $(id).hidden = true;
  $("whoami").textContent = "";
  $("signin").hidden = false;
}

async function signIn(ev) {
  ev.preventDefault();
  const value = $("token").value.trim();
  const r = await fetch("/api/v1/whoami", { headers: { Authorization: "Bearer " + value } });
  if (!r.ok) { $("signin-error").textContent = t("signin.bad"); return; }
  sessionStorage.setItem("token", value);
  sessionStorage.setItem("name", $("name").value.trim());
  $("token").value = "";
  $("signin-error").textContent = "";
  signedIn();
}

document.addEventListener("DOMContentLoaded", () => {
  translate();
  $("signin").addEventListener("submit", signIn);
  $("signout").addEventListener("click", signOut);
  $("lang").addEventListener("click", () => {
    lang = lang === "zh" ? "en" : "zh";
    sessionStorage.setItem("lang", lang);
    translate();
    route();
  });
  window.addEventListener("hashchange", () => { if (token()) route(); });
  const wall = (at) => () => { wallAt = at(); showCameras().catch(() => {}); };
  // after a camera was turned on purpose: its new view becomes its normal
  $("cam-relearn").addEventListener("click", async () => {
    const id = $("cam-relearn").dataset.camera;
    $("cam-error").textContent = "";
    try {
      await post("/api/v1/cameras/" + encodeURIComponent(id) + "/baseline/relearn", {});
      await showCamera(id);
    } catch (e) { $("cam-error").textContent = e.message; }
  });
  for (const id of ["cam-township", "cam-state", "cam-picture"]) $(id).addEventListener("change", wall(() => null));
  $("wall-first").addEventListener("click", wall(() => null));
  $("wall-next").addEventListener("click", wall(() => wallNext));
  const units = (at) => () => { unitsAt = at(); showUnits().catch((e) => { $("unit-error").textContent = e.message; }); };
  for (const id of ["unit-township", "unit-online"]) $(id).addEventListener("change", units(() => null));
  $("units-first").addEventListener("click", units(() => null));
  $("units-next").addEventListener("click", units(() => unitsNext));
  const spanOf = (n, ms) => () => {
    span = { n, ms };
    if (location.hash.startsWith("#camera/")) showCamera(decodeURIComponent(location.hash.slice(8))).catch(() => {});
  };
  $("span-day").addEventListener("click", spanOf(24, 3600e3));
  $("span-week").addEventListener("click", spanOf(7, 86400e3));
  for (const id of ["f-township", "f-kind", "f-state"]) $(id).addEventListener("change", () => showEvents().catch(() => {}));
  $("replay-all").addEventListener("click", () =>
    post("/api/v1/outbox/replay", { all: true }).then(showAdmin).catch((e) => { $("admin-error").textContent = e.message; }));
  // the overview refreshes itself while it is shown
  setInterval(() => { if (token() && !$("overview").hidden) showOverview().catch(() => {}); }, 10000);
  $("rep-view").addEventListener("click", () => showReport().catch((e) => { $("rep-error").textContent = e.message; }));
  for (const f of ["xlsx", "csv", "html"]) $("rep-" + f).addEventListener("click", () => download(f));
  if (token()) signedIn(); else signOut();
});
