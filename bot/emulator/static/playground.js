// AIGC playground: a tiny Discord client for the local emulator, built on /_control.
// Vanilla JS, no build step. Everything user-provided is rendered with textContent.
"use strict";

const $ = (id) => document.getElementById(id);
const state = {
  revision: 0, world: null, guildId: null, channelId: null, userId: null,
  commands: [], entries: [], selected: null, lastMessagesKey: "",
};

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

async function api(method, path, body) {
  const res = await fetch("/_control" + path, {
    method, headers: body ? { "Content-Type": "application/json" } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  const data = await res.json().catch(() => ({}));
  if (!res.ok) {
    const err = new Error(data.error || data.message || res.statusText);
    err.status = res.status;
    throw err;
  }
  return data;
}

function toast(text, ms = 2500) {
  const t = $("toast");
  t.textContent = text; t.hidden = false;
  clearTimeout(toast.timer); toast.timer = setTimeout(() => { t.hidden = true; }, ms);
}

function showError(text) {
  const e = $("composer-error");
  e.textContent = text || ""; e.hidden = !text;
}

// ---- world: guilds, channels, users -------------------------------------------------------
async function loadWorld() {
  const world = await api("GET", "/state");
  state.world = world;
  const status = $("status");
  status.textContent = world.connected_sessions ? "bot connected" : "bot not connected";
  status.className = "status " + (world.connected_sessions ? "ok" : "bad");
  if (!world.guilds.length) { $("guild-name").textContent = "No servers yet"; return; }
  if (!world.guilds.find((g) => g.id === state.guildId)) state.guildId = world.guilds[0].id;
  fillSelect($("guild"), world.guilds.map((g) => [g.id, g.name]), state.guildId);
  const guild = currentGuild();
  $("guild-name").textContent = guild.name;
  const humans = guild.members.filter((m) => !m.user.bot);
  if (!humans.find((m) => m.user.id === state.userId)) state.userId = humans.length ? humans[0].user.id : null;
  fillSelect($("user"), humans.map((m) => [m.user.id, m.user.username]), state.userId);
  const texts = guild.channels.filter((c) => c.type === 0);
  if (!texts.find((c) => c.id === state.channelId)) state.channelId = texts.length ? texts[0].id : null;
  const list = $("channel-list");
  list.replaceChildren(...texts.map((c) => el("li", {
    class: c.id === state.channelId ? "active" : "",
    onclick: () => { state.channelId = c.id; state.lastMessagesKey = ""; loadWorld().then(loadMessages); },
  }, "# " + c.name)));
  const ch = texts.find((c) => c.id === state.channelId);
  $("channel-title").textContent = ch ? "# " + ch.name : "# —";
}

function fillSelect(select, pairs, value) {
  const key = JSON.stringify(pairs);
  if (select.dataset.key !== key) {
    select.replaceChildren(...pairs.map(([v, label]) => el("option", { value: v }, label)));
    select.dataset.key = key;
  }
  if (value) select.value = value;
}

const currentGuild = () => state.world.guilds.find((g) => g.id === state.guildId);
const memberName = (id) => {
  const u = state.world && state.world.users.find((x) => x.id === id);
  return u ? u.username : id;
};

// ---- messages -----------------------------------------------------------------------------
async function loadMessages() {
  if (!state.channelId) { $("messages").replaceChildren(); return; }
  const msgs = await api("GET", `/channels/${state.channelId}/messages?viewer_id=${state.userId || ""}`);
  const key = JSON.stringify(msgs);
  if (key === state.lastMessagesKey) return;
  state.lastMessagesKey = key;
  const box = $("messages");
  const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
  box.replaceChildren(...msgs.map(renderMessage));
  if (atBottom || !renderMessage.done) box.scrollTop = box.scrollHeight;
  renderMessage.done = true;
}

function renderMessage(m) {
  const files = Object.fromEntries((m.attachments || []).map((a) => [a.filename, a]));
  const author = m.author.global_name || m.author.username;
  const body = el("div", { class: "body" },
    el("div", { class: "meta" },
      el("span", { class: "name" }, author), m.author.bot ? el("span", { class: "tag" }, "APP") : null,
      el("span", { class: "time" }, new Date(m.timestamp).toLocaleTimeString()),
      m.edited_timestamp ? el("span", { class: "time" }, "(edited)") : null),
    m.interaction_metadata && m.interaction_metadata.name
      ? el("div", { class: "eph" }, `${memberName(m.interaction_metadata.user.id)} used ` +
        (m.interaction_metadata.command_type === 1 ? "/" : "") + m.interaction_metadata.name) : null,
    m.flags & 128 ? el("div", { class: "thinking" }, `${author} is thinking…`) : null,
    m.content ? el("div", { class: "content" }, ...formatContent(m.content)) : null,
    ...(m.embeds || []).map((e) => renderEmbed(e, files)),
    ...(m.attachments || []).filter((a) => !usedByEmbed(m, a)).map(renderAttachment),
    renderComponents(m),
    m.flags & 64 ? el("div", { class: "eph" }, "👁 Only you can see this") : null,
  );
  const actions = messageCommands().length ? el("div", { class: "msg-actions" },
    el("select", {
      onchange: (ev) => { const name = ev.target.value; ev.target.value = ""; if (name) runMessageCommand(name, m.id); },
    }, el("option", { value: "" }, "Apps ▾"), ...messageCommands().map((c) => el("option", { value: c.name }, c.name)))) : null;
  return el("div", { class: "msg" }, el("div", { class: "avatar" }, author.slice(0, 1).toUpperCase()), body, actions);
}

function formatContent(text) {
  // **bold** and `code`; everything else literal.
  const parts = [];
  const re = /(\*\*[^*]+\*\*|`[^`]+`)/g;
  let last = 0, match;
  while ((match = re.exec(text))) {
    if (match.index > last) parts.push(text.slice(last, match.index));
    const tok = match[0];
    parts.push(tok.startsWith("**") ? el("strong", {}, tok.slice(2, -2)) : el("code", {}, tok.slice(1, -1)));
    last = match.index + tok.length;
  }
  if (last < text.length) parts.push(text.slice(last));
  return parts;
}

function resolveUrl(url, files) {
  if (url && url.startsWith("attachment://")) {
    const f = files[url.slice("attachment://".length)];
    return f ? f.url : null;
  }
  return url;
}

function usedByEmbed(m, a) {
  return (m.embeds || []).some((e) => ["image", "thumbnail"].some((k) => e[k] && e[k].url === "attachment://" + a.filename));
}

function renderEmbed(e, files) {
  const color = e.color !== undefined ? "#" + e.color.toString(16).padStart(6, "0") : null;
  const image = e.image && resolveUrl(e.image.url, files);
  const thumb = e.thumbnail && resolveUrl(e.thumbnail.url, files);
  return el("div", { class: "embed", style: color ? `border-color:${color}` : null },
    e.author && e.author.name ? el("div", { class: "field-name" }, e.author.name) : null,
    e.title ? el("div", { class: "title" }, e.title) : null,
    e.description ? el("div", { class: "content" }, ...formatContent(e.description)) : null,
    e.fields && e.fields.length ? el("div", { class: "fields" }, ...e.fields.map((f) =>
      el("div", {}, el("div", { class: "field-name" }, f.name), el("div", { class: "content" }, f.value)))) : null,
    image ? el("img", { src: image, alt: "embed image" }) : null,
    thumb && !image ? el("img", { src: thumb, alt: "thumbnail" }) : null,
    e.footer && e.footer.text ? el("div", { class: "footer" }, e.footer.text) : null);
}

function renderAttachment(a) {
  const isImage = (a.content_type || "").startsWith("image/");
  const isAudio = (a.content_type || "").startsWith("audio/");
  return el("div", { class: "attachment" },
    isImage ? el("img", { src: a.url, alt: a.filename }) : null,
    isAudio ? el("audio", { src: a.url, controls: true }) : null,
    el("a", { href: a.url, target: "_blank", rel: "noopener" }, `📎 ${a.filename} (${Math.ceil(a.size / 1024)} KiB)`));
}

function renderComponents(m) {
  const rows = (m.components || []).filter((r) => r.type === 1);
  if (!rows.length) return null;
  return el("div", { class: "components" }, ...rows.map((row) => el("div", { class: "crow" }, ...row.components.map((c) => {
    if (c.type === 2) {
      const label = [c.emoji && c.emoji.name, c.label].filter(Boolean).join(" ");
      if (c.style === 5) return el("a", { class: "btn s5", href: c.url, target: "_blank", rel: "noopener" }, label + " ↗");
      return el("button", { class: `btn s${c.style}`, disabled: c.disabled, type: "button",
        onclick: () => click(m.id, c.custom_id) }, label || "·");
    }
    if (c.type === 3) {
      return el("select", { disabled: c.disabled, onchange: (ev) => { if (ev.target.value) click(m.id, c.custom_id, [ev.target.value]); } },
        el("option", { value: "" }, c.placeholder || "Choose…"),
        ...c.options.map((o) => el("option", { value: o.value }, o.label)));
    }
    return el("span", { class: "eph" }, `[component type ${c.type}]`);
  }))));
}

// ---- interactions -------------------------------------------------------------------------
async function afterAck(result) {
  if (result.rejected && result.rejected.length && !result.acked) {
    const r = result.rejected[result.rejected.length - 1];
    showError(`The bot's response was refused: ${r.status} ${r.code} ${r.message}`);
  } else if (!result.acked) {
    showError("The bot did not acknowledge the interaction in time.");
  } else {
    toast(`acknowledged in ${result.ack_ms.toFixed(1)} ms`);
  }
  if (result.response_type === 9) openModal(result);
  await refresh();
}

async function interact(body) {
  showError("");
  if (!state.userId) { showError("Add a member to this server first."); return null; }
  try {
    const result = await api("POST", "/interactions", {
      guild_id: state.guildId, channel_id: state.channelId, user_id: state.userId, wait: "ack", timeout: 5, ...body,
    });
    await afterAck(result);
    return result;
  } catch (err) {
    showError(err.status === 408 ? "This interaction failed: the bot did not acknowledge it in time." : err.message);
    await refresh();
    return null;
  }
}

const click = (messageId, customId, values) => interact({ kind: "component", message_id: messageId, custom_id: customId, values });
const runMessageCommand = (name, messageId) => interact({ kind: "message_command", command: name, message_id: messageId });
const messageCommands = () => state.commands.filter((c) => c.type === 3);

function openModal(result) {
  const modal = result.response_data;
  $("modal-title").textContent = modal.title;
  const inputs = [];
  const fields = [];
  for (const top of modal.components || []) {
    const pairs = top.type === 1 ? top.components.map((c) => [c.label, c]) : top.type === 18 ? [[top.label, top.component]] : [];
    for (const [label, c] of pairs) {
      if (c.type !== 4) continue;
      const input = c.style === 2 ? el("textarea", { rows: 4 }) : el("input", { type: "text" });
      input.value = c.value || ""; input.placeholder = c.placeholder || "";
      if (c.required !== false) input.required = true;
      inputs.push([c.custom_id, input]);
      fields.push(el("label", {}, label || c.custom_id), input);
    }
  }
  $("modal-fields").replaceChildren(...fields);
  const dialog = $("modal");
  $("modal-form").onsubmit = async (ev) => {
    ev.preventDefault();
    dialog.close();
    await interact({ kind: "modal_submit", opener_id: result.id, values: Object.fromEntries(inputs.map(([k, i]) => [k, i.value])) });
  };
  $("modal-cancel").onclick = () => dialog.close();
  dialog.showModal();
}

// ---- command composer ---------------------------------------------------------------------
function flatten(commands) {
  // One entry per runnable path: "/aigc admin reload" with the leaf options.
  const out = [];
  const walk = (path, node, cmd) => {
    const subs = (node.options || []).filter((o) => o.type === 1 || o.type === 2);
    if (!subs.length) { out.push({ path, cmd, options: node.options || [], description: node.description }); return; }
    for (const s of subs) walk(path + " " + s.name, s, cmd);
  };
  for (const c of commands.filter((c) => c.type === 1)) walk(c.name, c, c);
  return out.sort((a, b) => a.path.localeCompare(b.path));
}

async function loadCommands() {
  state.commands = await api("GET", `/commands?guild_id=${state.guildId || ""}`);
  state.entries = flatten(state.commands);
}

function showMenu() {
  const input = $("command-input");
  const q = input.value.replace(/^\//, "").trim().toLowerCase();
  const menu = $("command-menu");
  if (!input.value.startsWith("/") || (state.selected && input.value === "/" + state.selected.path)) { menu.hidden = true; return; }
  const hits = state.entries.filter((e) => e.path.toLowerCase().includes(q));
  menu.replaceChildren(...(hits.length ? hits.map((e) => el("div", { class: "item", onclick: () => selectCommand(e) },
    "/" + e.path, el("span", { class: "desc" }, e.description || ""))) : [el("div", { class: "item" }, "No matching commands (has the bot synced?)")]));
  menu.hidden = false;
}

function selectCommand(entry) {
  state.selected = entry;
  $("command-input").value = "/" + entry.path;
  $("command-menu").hidden = true;
  $("options").replaceChildren(...entry.options.map(optionField));
}

function optionField(opt) {
  const guild = currentGuild();
  let input;
  if (opt.choices && opt.choices.length) {
    input = el("select", {}, opt.required ? null : el("option", { value: "" }, "—"),
      ...opt.choices.map((c) => el("option", { value: JSON.stringify(c.value) }, c.name)));
    input.dataset.json = "1";
  } else if (opt.type === 5) {
    input = el("select", {}, el("option", { value: "" }, "—"), el("option", { value: "true" }, "True"), el("option", { value: "false" }, "False"));
    input.dataset.json = "1";
  } else if (opt.type === 6 || opt.type === 9) {
    input = el("select", {}, el("option", { value: "" }, "—"), ...guild.members.map((m) => el("option", { value: m.user.id }, m.user.username)));
  } else if (opt.type === 7) {
    input = el("select", {}, el("option", { value: "" }, "—"), ...guild.channels.map((c) => el("option", { value: c.id }, "#" + c.name)));
  } else if (opt.type === 8) {
    input = el("select", {}, el("option", { value: "" }, "—"), ...guild.roles.map((r) => el("option", { value: r.id }, r.name)));
  } else if (opt.type === 11) {
    input = el("input", { type: "file" });
  } else {
    input = el("input", { type: opt.type === 4 || opt.type === 10 ? "number" : "text",
      step: opt.type === 10 ? "any" : null, min: opt.min_value, max: opt.max_value,
      minlength: opt.min_length, maxlength: opt.max_length });
  }
  input.dataset.name = opt.name;
  input.dataset.type = opt.type;
  const wrap = el("label", { class: "opt" }, el("span", {}, opt.name, opt.required ? el("span", { class: "req" }, " *") : null,
    opt.description ? " — " + opt.description : ""), input);
  if (opt.autocomplete) attachAutocomplete(wrap, input, opt);
  return wrap;
}

function attachAutocomplete(wrap, input, opt) {
  const box = el("div", { class: "suggest", hidden: true });
  wrap.append(box);
  let timer = null;
  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      const options = await collectOptions(true);
      options[opt.name] = input.value;
      try {
        const res = await api("POST", "/interactions", {
          kind: "autocomplete", guild_id: state.guildId, channel_id: state.channelId, user_id: state.userId,
          command: state.selected.path, options, focused: opt.name, wait: "ack", timeout: 3 });
        const choices = (res.response_data && res.response_data.choices) || [];
        box.replaceChildren(...choices.map((c) => el("div", { onclick: () => { input.value = c.value; box.hidden = true; } }, c.name)));
        box.hidden = !choices.length;
        if (res.rejected.length && !res.acked) showError(`Autocomplete refused: ${res.rejected[0].message}`);
      } catch (err) { showError(err.message); }
    }, 250);
  });
  input.addEventListener("blur", () => setTimeout(() => { box.hidden = true; }, 200));
}

async function collectOptions(partial = false) {
  const options = {};
  for (const input of $("options").querySelectorAll("[data-name]")) {
    const name = input.dataset.name, type = Number(input.dataset.type);
    if (type === 11) {
      if (partial || !input.files.length) continue;
      const f = input.files[0];
      const data = await f.arrayBuffer();
      let bin = "";
      for (const b of new Uint8Array(data)) bin += String.fromCharCode(b);
      const up = await api("POST", "/uploads", { channel_id: state.channelId, filename: f.name,
        content_type: f.type || null, data_base64: btoa(bin) });
      options[name] = up.id;
      continue;
    }
    if (input.value === "") continue;
    if (input.dataset.json) options[name] = JSON.parse(input.value);
    else if (type === 4) options[name] = partial ? input.value : parseInt(input.value, 10);
    else if (type === 10) options[name] = partial ? input.value : parseFloat(input.value);
    else options[name] = input.value;
  }
  return options;
}

async function submitCommand(ev) {
  ev.preventDefault();
  const text = $("command-input").value.trim();
  if (text && !text.startsWith("/")) {  // plain chat as the chosen user
    try {
      await api("POST", `/channels/${state.channelId}/messages`, { user_id: state.userId, content: text });
      $("command-input").value = ""; showError("");
    } catch (err) { showError(err.message); }
    return;
  }
  const entry = state.selected && text === "/" + state.selected.path ? state.selected
    : state.entries.find((e) => "/" + e.path === text);
  if (!entry) { showError("Pick a command from the list (type / to see them)."); return; }
  const options = await collectOptions();
  const result = await interact({ kind: "slash", command: entry.path, options });
  if (result && result.acked) {
    $("command-input").value = ""; state.selected = null; $("options").replaceChildren();
  }
}

// ---- live updates -------------------------------------------------------------------------
async function refresh() {
  await loadWorld();
  await loadCommands();
  await loadMessages();
}

async function poll() {
  for (;;) {
    try {
      const { revision } = await api("GET", `/wait?since=${state.revision}&timeout=20`);
      if (revision !== state.revision) { state.revision = revision; await refresh(); }
    } catch (err) {
      $("status").textContent = "emulator unreachable"; $("status").className = "status bad";
      await new Promise((r) => setTimeout(r, 2000));
    }
  }
}

$("guild").addEventListener("change", (ev) => { state.guildId = ev.target.value; state.channelId = null; state.lastMessagesKey = ""; refresh(); });
$("user").addEventListener("change", (ev) => { state.userId = ev.target.value; state.lastMessagesKey = ""; loadMessages(); });
$("command-input").addEventListener("input", showMenu);
$("command-input").addEventListener("focus", showMenu);
$("composer").addEventListener("submit", submitCommand);
refresh().then(poll);
