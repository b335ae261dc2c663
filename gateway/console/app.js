// The operator console. Every text from the gateway or a device goes in through textContent
// (never as HTML); the token lives in sessionStorage and travels in the Authorization header
// only, never in a URL.
"use strict";

const DICT = {
  zh: {
    "title": "指挥控制台", "nav.cameras": "视频", "nav.units": "单位", "nav.reports": "报表", "any.state": "全部状态",
    "any.picture": "全部画面", "cam.online": "在线", "cam.offline": "离线", "cam.stalled": "中断",
    "cam.degraded": "降级", "cam.unknown": "未知", "pic.failing": "画面异常", "pic.clear": "画面正常",
    "check.black": "黑屏", "check.frozen": "冻结", "check.blurred": "模糊", "check.occluded": "遮挡",
    "check.underexposed": "过暗", "check.overexposed": "过亮", "check.low_contrast": "低对比度", "check.color_cast": "偏色",
    "col.unit": "单位", "col.online": "在线", "col.last_seen": "最后通信", "yes": "是", "no": "否",
    "patrol": "查岗", "patrol.sent": "已发送查岗", "rep.from": "自", "rep.to": "至", "rep.view": "查看",
    "col.rank": "排名", "col.score": "得分", "nav.overview": "总览", "nav.events": "事件", "signout": "退出",
    "signin.title": "登录", "signin.token": "访问令牌", "signin.submit": "登录",
    "signin.bad": "令牌无效", "signin.name": "值班人员", "back": "← 返回事件列表",
    "history": "处置记录", "f.kind": "类型", "f.township": "乡镇", "f.occurred": "发生时间",
    "f.address": "地址", "f.state": "状态", "f.due": "下一期限", "f.source": "来源",
    "act.sign": "签收", "act.assign": "交办", "act.accept": "接收", "act.feedback": "反馈",
    "act.close": "办结", "act.reopen": "重新打开", "act.to": "部门代码", "act.note": "说明",
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
    "kind.event.escalated": "升级", "kind.event.evidence": "证据", "kind.event.updated": "处置更新",
    "kind.event.assigned": "交办", "kind.event.overdue": "督办", "kind.report.weekly": "周报",
    "state.open": "待签收", "state.signed": "已签收", "state.assigned": "已交办",
    "state.accepted": "已接收", "state.handled": "已反馈", "state.closed": "已办结",
  },
  en: {
    "title": "Command console", "nav.cameras": "Cameras", "nav.units": "Units", "nav.reports": "Reports", "any.state": "Any state",
    "any.picture": "Any picture", "cam.online": "Online", "cam.offline": "Offline", "cam.stalled": "Stalled",
    "cam.degraded": "Degraded", "cam.unknown": "Unknown", "pic.failing": "Picture failing", "pic.clear": "Picture clear",
    "check.black": "Black", "check.frozen": "Frozen", "check.blurred": "Blurred", "check.occluded": "Occluded",
    "check.underexposed": "Too dark", "check.overexposed": "Too bright", "check.low_contrast": "Low contrast", "check.color_cast": "Colour cast",
    "col.unit": "Unit", "col.online": "Online", "col.last_seen": "Last seen", "yes": "yes", "no": "no",
    "patrol": "Patrol check", "patrol.sent": "Patrol check sent", "rep.from": "From", "rep.to": "To", "rep.view": "View",
    "col.rank": "Rank", "col.score": "Score", "nav.overview": "Overview", "nav.events": "Events", "signout": "Sign out",
    "signin.title": "Sign in", "signin.token": "Access token", "signin.submit": "Sign in",
    "signin.bad": "Unknown token", "signin.name": "Duty officer", "back": "← Back to events",
    "history": "History", "f.kind": "Kind", "f.township": "Township", "f.occurred": "Occurred",
    "f.address": "Address", "f.state": "State", "f.due": "Next deadline", "f.source": "Source",
    "act.sign": "Sign", "act.assign": "Assign", "act.accept": "Accept", "act.feedback": "Feedback",
    "act.close": "Close", "act.reopen": "Reopen", "act.to": "Department code", "act.note": "Note",
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

function percent(x) { return typeof x === "number" ? (x * 100).toFixed(1) + "%" : "—"; }

async function showOverview() {
  const data = await api("/api/v1/townships");
  const body = $("townships");
  body.replaceChildren();
  for (const tw of data.townships) {
    const row = document.createElement("tr");
    cell(row, tw.name + " (" + tw.code + ")");
    cell(row, percent(tw.unit_online_ratio));
    const cams = tw.cameras_registered > 0;
    cell(row, cams ? percent(tw.camera_online_ratio) : "—");
    cell(row, cams ? percent(tw.camera_integrity_ratio) : "—");
    cell(row, String(tw.pending_deliveries ?? 0));
    body.appendChild(row);
  }
}

function eventRow(e, fresh) {
  const row = document.createElement("tr");
  row.dataset.id = e.id;
  if (e.kind === "fire.alarm") row.classList.add("fire-alarm");
  if (fresh) row.classList.add("new");
  cell(row, (e.occurred_at || "").replace("T", " ").slice(0, 19));
  cell(row, t("kind." + e.kind));
  cell(row, e.title);
  cell(row, e.township && (e.township.name || e.township.code));
  cell(row, e.state ? t("state." + e.state) : "");
  row.addEventListener("click", () => { location.hash = "#event/" + e.id; });
  return row;
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
  if (stage === "open") box.append(actionButton("act.sign", () => step("sign")));
  if (stage === "signed") {
    const to = el("input", null, { placeholder: t("act.to"), id: "act-to", maxlength: "64" });
    box.append(to, actionButton("act.assign", () => step("assign", { to: to.value.trim() })));
  }
  if (stage === "assigned") box.append(actionButton("act.accept", () => step("accept")));
  if (stage === "signed" || stage === "accepted" || stage === "assigned") {
    const verdict = el("select", null, { id: "act-verdict" });
    const family = e.kind.startsWith("fire.") ? VERDICTS.fire : VERDICTS.other;
    for (const v of family) verdict.append(el("option", t("verdict." + v), { value: v }));
    const note = el("input", null, { placeholder: t("act.note"), id: "act-note", maxlength: "2000" });
    box.append(verdict, note,
      actionButton("act.feedback", () => step("feedback", { verdict: verdict.value, note: note.value })));
  }
  if (stage === "handled") box.append(actionButton("act.close", () => step("close")));
  if (stage === "closed") {
    const reason = el("input", null, { placeholder: t("act.reason"), id: "act-reason", maxlength: "2000" });
    box.append(reason, actionButton("act.reopen", () => step("reopen", { reason: reason.value })));
  }
}

async function showCameras() {
  const q = new URLSearchParams({ limit: "100" });
  if ($("cam-state").value) q.set("state", $("cam-state").value);
  if ($("cam-picture").value) q.set("picture", $("cam-picture").value);
  const data = await api("/api/v1/cameras?" + q);
  const cards = data.cameras.map((c) => {
    const card = el("div", null, { class: "card", "data-camera": c.id });
    const img = el("img", null, { alt: c.name });
    card.append(img, el("div", c.name));
    const badge = el("span", t("cam." + c.state), { class: "badge " + c.state });
    card.append(badge);
    const failing = (c.picture && c.picture.failing) || [];
    if (failing.length) card.append(el("div", failing.map((f) => t("check." + f)).join(" "), { class: "failing" }));
    if (c.state === "online") {
      fetch("/api/v1/cameras/" + encodeURIComponent(c.id) + "/snapshot.jpg", {
        headers: { Authorization: "Bearer " + token() },
      }).then((r) => (r.ok ? r.blob() : null)).then((b) => { if (b) img.src = URL.createObjectURL(b); }).catch(() => {});
    }
    return card;
  });
  $("wall").replaceChildren(...cards);
}

async function showUnits() {
  const data = await api("/api/v1/units?limit=500");
  $("unit-rows").replaceChildren(...data.units.map((u) => {
    const row = document.createElement("tr");
    cell(row, u.name + " (" + u.id + ")");
    cell(row, u.township);
    cell(row, u.online ? t("yes") : t("no"));
    cell(row, u.last_seen ? u.last_seen.replace("T", " ").slice(0, 19) : "—");
    const td = cell(row, "");
    if (u.gb26875_address !== null && u.gb26875_address !== undefined) {
      const b = el("button", t("patrol"), { type: "button" });
      b.addEventListener("click", async () => {
        $("unit-error").textContent = "";
        try {
          await post("/api/v1/units/" + encodeURIComponent(u.id) + "/patrol-check", { timeout_min: 10 });
          b.textContent = t("patrol.sent");
        } catch (e) { $("unit-error").textContent = e.message; }
      });
      td.append(b);
    }
    return row;
  }));
}

function period() {
  const day = (v) => (v ? new Date(v + "T00:00:00").toISOString() : null);
  const q = new URLSearchParams();
  const from = day($("rep-from").value), to = day($("rep-to").value);
  if (from) q.set("from", from);
  if (to) q.set("to", to);
  return q;
}

async function showReport() {
  $("rep-error").textContent = "";
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
async function download(format) {
  $("rep-error").textContent = "";
  const q = period();
  q.set("format", format);
  const r = await fetch("/api/v1/reports/assessment?" + q, { headers: { Authorization: "Bearer " + token() } });
  if (!r.ok) { $("rep-error").textContent = String(r.status); return; }
  const a = el("a", null, { href: URL.createObjectURL(await r.blob()), download: "assessment." + format, id: "rep-file" });
  document.body.append(a);
  a.click();
  a.remove();
}

let currentEvent = null;
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
    const late = (e.due.overdue || []).length ? " · " + t("overdue") : "";
    fact(facts, "f.due", e.due.next + late);
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
  const data = await api("/api/v1/events?state=open&limit=200");
  const body = $("event-rows");
  body.replaceChildren(...data.events.reverse().map((e) => eventRow(e, false)));
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
  $("event-rows").prepend(eventRow(e, true));
}

const PAGES = { overview: showOverview, events: showEvents, cameras: showCameras, units: showUnits, reports: showReport };

function route() {
  const hash = location.hash;
  const page = hash.startsWith("#event/") ? "event" : (PAGES[hash.slice(1)] ? hash.slice(1) : "overview");
  for (const id of [...Object.keys(PAGES), "event"]) $(id).hidden = id !== page;
  for (const a of document.querySelectorAll("#nav a")) a.classList.toggle("active", a.hash === "#" + page);
  if (page === "event") showEvent(decodeURIComponent(hash.slice(7))).catch((e) => { $("ev-error").textContent = e.message; });
  else PAGES[page]().catch(() => {});
  if (page === "events") follow();
}

function signedIn() {
  $("signin").hidden = true;
  $("nav").hidden = false;
  $("signout").hidden = false;
  route();
}

function signOut() {
  sessionStorage.removeItem("token");
  if (live) { live.abort(); live = null; }
  for (const id of [...Object.keys(PAGES), "event", "nav", "signout"]) $(id).hidden = true;
  $("signin").hidden = false;
}

async function signIn(ev) {
  ev.preventDefault();
  const value = $("token").value.trim();
  const r = await fetch("/api/v1/townships", { headers: { Authorization: "Bearer " + value } });
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
  for (const id of ["cam-state", "cam-picture"]) $(id).addEventListener("change", () => showCameras().catch(() => {}));
  $("rep-view").addEventListener("click", () => showReport().catch((e) => { $("rep-error").textContent = e.message; }));
  for (const f of ["xlsx", "csv", "html"]) $("rep-" + f).addEventListener("click", () => download(f));
  if (token()) signedIn(); else signOut();
});
