// AIGC playground: a tiny Discord client for the local emulator, built on /_control.
// Vanilla JS, no build step. Everything user-provided is rendered as text nodes, never as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
const state = {
  revision: 0, world: null, guildId: null, channelId: null, userId: null,
  commands: [], entries: [], selected: null, lastMessagesKey: "",
  locale: "en-US",  // the acting member's client language (sent as the interaction's locale)
  pinned: true,     // the message list follows new messages while scrolled to the bottom
  jump: null,       // {id, until}: a message a jump link scrolled to
  sending: false, menuIndex: 0,
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
  const me = humans.find((m) => m.user.id === state.userId);
  state.locale = (me && me.locale) || "en-US";
  const localeSelect = $("locale");
  if (![...localeSelect.options].some((o) => o.value === state.locale)) localeSelect.append(el("option", { value: state.locale }, state.locale));
  localeSelect.value = state.locale;
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
  box.replaceChildren(...msgs.map(renderMessage));
  // Images load after this; each one that does re-applies the scroll (see followImage).
  keepInView();
}

function keepInView() {
  if (state.jump && Date.now() < state.jump.until) scrollToJump();
  else if (state.pinned) { const box = $("messages"); box.scrollTop = box.scrollHeight; }
}

function followImage(img) {
  // A new result's image has no height until it loads: scroll again once it has one. The
  // growth itself can move the view (scroll anchoring) and fire a scroll event that unpins,
  // so whether we were at the bottom is judged without the image's new height.
  if (!img.complete) img.addEventListener("load", () => {
    const box = $("messages");
    if (box.scrollHeight - img.offsetHeight - box.scrollTop - box.clientHeight < 40) state.pinned = true;
    keepInView();
  }, { once: true });
  return img;
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
  return el("div", { class: "msg", "data-message-id": m.id }, el("div", { class: "avatar" }, author.slice(0, 1).toUpperCase()), body, actions);
}

// ---- Discord markup -------------------------------------------------------------------------
// Message markdown rendered the way Discord's client does, as DOM nodes. User text only ever
// becomes text nodes (document.createTextNode / textContent): it is never parsed as HTML, so
// no markup can inject any (the equivalent of escaping HTML first, then applying markup).
//   blocks: ```code blocks```, "> " and ">>> " quotes, "# " / "## " / "### " headings, "-# " subtext
//   inline: `code`, <@user> <@&role> <#channel> </command:id> <:emoji:id> <t:unix:style>,
//           @everyone, links (bare, <bare>, [masked](url)), **bold**, *italic* / _italic_,
//           __underline__, ~~strike~~, ||spoiler||, and \-escapes.

const JUMP_LINK = /^https:\/\/(?:(?:ptb|canary)\.)?discord(?:app)?\.com\/channels\/(\d+|@me)\/(\d+)(?:\/(\d+))?\/?$/;

function formatContent(text) {
  const out = [];
  const fence = /```(?:([\w+#.-]*)\n)?([\s\S]*?)```/g;
  let last = 0, m;
  while ((m = fence.exec(text))) {
    if (m.index > last) out.push(...formatBlocks(text.slice(last, m.index)));
    out.push(el("pre", { class: "codeblock", "data-lang": m[1] || null }, el("code", {}, m[2].replace(/\n$/, ""))));
    last = fence.lastIndex;
  }
  if (last < text.length) out.push(...formatBlocks(text.slice(last)));
  return out;
}

function formatBlocks(text) {
  // Line-level markup outside code blocks; runs of ordinary lines are formatted together so
  // **bold** may span lines (newlines stay: .content is white-space: pre-wrap).
  const out = [];
  const lines = text.split("\n");
  let plain = [];
  const flush = () => {
    if (plain.length) out.push(...formatInline(plain.join("\n")));
    plain = [];
  };
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    let m;
    if (line.startsWith(">>> ")) {
      flush();
      out.push(el("blockquote", {}, ...formatInline([line.slice(4), ...lines.slice(i + 1)].join("\n"))));
      return out;
    }
    if (line.startsWith("> ") || line === ">") {
      flush();
      const quoted = [];
      while (i < lines.length && (lines[i].startsWith("> ") || lines[i] === ">")) quoted.push(lines[i++].slice(2));
      i--;
      out.push(el("blockquote", {}, ...formatInline(quoted.join("\n"))));
    } else if ((m = /^(#{1,3}) (.+)$/.exec(line))) {
      flush();
      out.push(el("h" + (m[1].length + 2), { class: "md-heading" }, ...formatInline(m[2])));
    } else if ((m = /^-# (.+)$/.exec(line))) {
      flush();
      out.push(el("div", { class: "subtext" }, ...formatInline(m[1])));
    } else {
      plain.push(line);
    }
  }
  flush();
  return out;
}

// Inline rules, tried in this order at each position (sticky regexes); the first that matches wins.
const INLINE_RULES = [
  [/\\([^\sA-Za-z0-9])/y, (m) => m[1]],
  [/(`+)([\s\S]*?[^`])\1(?!`)/y, (m) => el("code", {}, m[1].length > 1 ? m[2].replace(/^ (.*) $/s, "$1") : m[2])],
  [/<@!?(\d+)>/y, (m) => mention("@" + userName(m[1]))],
  [/<@&(\d+)>/y, (m) => roleMention(m[1])],
  [/<#(\d+)>/y, (m) => channelMention(m[1])],
  [/<\/([-_\p{L}\p{N} ]{1,98}):(\d+)>/yu, (m) => mention("/" + m[1])],
  [/<(a?):(\w{2,32}):(\d+)>/y, (m) => el("span", { class: "emoji", title: `:${m[2]}:` }, `:${m[2]}:`)],
  [/<t:(-?\d{1,13})(?::([tTdDfFsSR]))?>/y, (m) => timestamp(Number(m[1]), m[2] || "f")],
  [/@(everyone|here)\b/y, (m) => mention("@" + m[1])],
  [/<(https?:\/\/[^\s>]+)>/y, (m) => link(m[1], [m[1]])],
  [/\[((?:\\.|[^\[\]\\])+)\]\(\s*<?(https?:\/\/[^\s)>]+)>?\s*\)/y, (m) => link(m[2], formatInline(m[1], true))],
  [/https?:\/\/[^\s<]*[^\s<.,:;"')\]!?]/y, (m) => link(m[0], [m[0]])],
  [/\*\*([\s\S]+?)\*\*(?!\*)/y, (m, nolinks) => el("strong", {}, ...formatInline(m[1], nolinks))],
  [/__([\s\S]+?)__(?!_)/y, (m, nolinks) => el("u", {}, ...formatInline(m[1], nolinks))],
  [/\*(?=[^\s*])([\s\S]*?[^\s\\])\*(?!\*)/y, (m, nolinks) => el("em", {}, ...formatInline(m[1], nolinks))],
  [/_([^_\s](?:[\s\S]*?[^_\s\\])?)_(?![\p{L}\p{N}_])/yu, (m, nolinks, prev) =>
    /[\p{L}\p{N}]/u.test(prev) ? null : el("em", {}, ...formatInline(m[1], nolinks))],
  [/~~([\s\S]+?)~~/y, (m, nolinks) => el("s", {}, ...formatInline(m[1], nolinks))],
  [/\|\|([\s\S]+?)\|\|/y, (m, nolinks) => el("span", { class: "spoiler", title: "Spoiler: click to show",
    onclick: (ev) => ev.currentTarget.classList.add("shown") }, ...formatInline(m[1], nolinks))],
];
const LINK_RULES = new Set([9, 10, 11]);  // no links inside a masked link's text

function formatInline(text, nolinks = false) {
  const out = [];
  let plain = "";
  for (let i = 0; i < text.length;) {
    let node = null, end = i;
    for (let r = 0; r < INLINE_RULES.length && node === null; r++) {
      if (nolinks && LINK_RULES.has(r)) continue;
      const [re, make] = INLINE_RULES[r];
      re.lastIndex = i;
      const m = re.exec(text);
      if (!m) continue;
      node = make(m, nolinks, i ? text[i - 1] : "");
      end = i + m[0].length;
    }
    if (node === null) { plain += text[i++]; continue; }
    if (typeof node === "string") { plain += node; } else {
      if (plain) out.push(plain);
      plain = "";
      out.push(node);
    }
    i = end;
  }
  if (plain) out.push(plain);
  return out;
}

const mention = (label, attrs = {}) => el("span", { class: "mention", ...attrs }, label);

function userName(id) {
  const u = state.world && state.world.users.find((x) => x.id === id);
  return u ? u.global_name || u.username : "unknown-user";
}

function roleMention(id) {
  const guild = state.world && state.world.guilds.find((g) => g.roles.some((r) => r.id === id));
  const role = guild && guild.roles.find((r) => r.id === id);
  if (!role) return mention("@unknown-role");
  const color = role.color ? "#" + role.color.toString(16).padStart(6, "0") : null;
  return mention("@" + role.name, color ? { style: `color:${color}` } : {});
}

function channelMention(id) {
  const guild = state.world && state.world.guilds.find((g) => g.channels.some((c) => c.id === id));
  const ch = guild && guild.channels.find((c) => c.id === id);
  if (!ch) return mention("#unknown");
  return el("a", { class: "mention", href: "#", onclick: (ev) => { ev.preventDefault(); jumpTo(guild.id, ch.id, null); } }, "#" + ch.name);
}

const TIME_STYLES = {
  t: { hour: "numeric", minute: "2-digit" },
  T: { hour: "numeric", minute: "2-digit", second: "2-digit" },
  d: { year: "numeric", month: "2-digit", day: "2-digit" },
  D: { year: "numeric", month: "long", day: "numeric" },
  f: { year: "numeric", month: "long", day: "numeric", hour: "numeric", minute: "2-digit" },
  F: { weekday: "long", year: "numeric", month: "long", day: "numeric", hour: "numeric", minute: "2-digit" },
  s: { year: "numeric", month: "2-digit", day: "2-digit", hour: "numeric", minute: "2-digit" },
  S: { year: "numeric", month: "2-digit", day: "2-digit", hour: "numeric", minute: "2-digit", second: "2-digit" },
};

function timestamp(unix, style) {
  const date = new Date(unix * 1000);
  if (isNaN(date.getTime())) return null;  // out of range: leave the text as typed
  const span = el("span", { class: "timestamp", "data-unix": unix, "data-style": style,
    title: date.toLocaleString(state.locale, TIME_STYLES.F) });
  span.textContent = formatTime(unix, style);
  return span;
}

function formatTime(unix, style) {
  if (style !== "R") return new Date(unix * 1000).toLocaleString(state.locale, TIME_STYLES[style]);
  const diff = unix - Date.now() / 1000;  // seconds; negative = in the past
  const units = [["year", 31536000], ["month", 2592000], ["day", 86400], ["hour", 3600], ["minute", 60], ["second", 1]];
  const [unit, size] = units.find(([, s]) => Math.abs(diff) >= s) || units[units.length - 1];
  return new Intl.RelativeTimeFormat(state.locale, { numeric: "always" }).format(Math.round(diff / size), unit);
}

// Relative timestamps ("3 minutes ago") keep counting, as in Discord.
setInterval(() => {
  for (const s of document.querySelectorAll('.timestamp[data-style="R"]')) s.textContent = formatTime(Number(s.dataset.unix), "R");
}, 10000);

function link(url, children) {
  // Only web links become clickable (never javascript: or data: URLs from a bot's embed or button).
  const safe = /^https?:\/\//i.test(url || "");
  const a = el("a", { href: safe ? url : null, target: "_blank", rel: "noopener noreferrer", title: url }, ...children);
  const jump = jumpTarget(url);
  if (jump) {
    // A jump link to a message in this emulator: scroll to it here instead of leaving for discord.com.
    a.addEventListener("click", (ev) => { ev.preventDefault(); jumpTo(...jump); });
    a.classList.add("jump");
  }
  return a;
}

function jumpTarget(url) {
  const m = JUMP_LINK.exec(url || "");
  if (!m || !state.world) return null;
  const guild = state.world.guilds.find((g) => g.id === m[1]);
  if (!guild || !guild.channels.some((c) => c.id === m[2])) return null;
  return [m[1], m[2], m[3] || null];
}

async function jumpTo(guildId, channelId, messageId) {
  if (guildId !== state.guildId || channelId !== state.channelId) {
    state.guildId = guildId; state.channelId = channelId; state.lastMessagesKey = "";
    await loadWorld();
    await loadCommands();
    await loadMessages();
  }
  if (!messageId) return;
  const target = $("messages").querySelector(`[data-message-id="${CSS.escape(messageId)}"]`);
  if (!target) { toast("That message is not here any more (or only its recipient can see it)."); return; }
  state.jump = { id: messageId, until: Date.now() + 3000 };
  scrollToJump();
}

function scrollToJump() {
  const target = state.jump && $("messages").querySelector(`[data-message-id="${CSS.escape(state.jump.id)}"]`);
  if (!target) return;
  target.scrollIntoView({ block: "center" });
  target.classList.add("highlight");
  state.pinned = false;
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
    e.title ? el("div", { class: "title" }, e.url ? link(e.url, formatInline(e.title, true)) : formatInline(e.title)) : null,
    e.description ? el("div", { class: "content" }, ...formatContent(e.description)) : null,
    e.fields && e.fields.length ? el("div", { class: "fields" }, ...e.fields.map((f) =>
      el("div", {}, el("div", { class: "field-name" }, ...formatInline(f.name)),
        el("div", { class: "content" }, ...formatContent(f.value))))) : null,
    image ? followImage(el("img", { src: image, alt: "embed image" })) : null,
    thumb && !image ? followImage(el("img", { src: thumb, alt: "thumbnail" })) : null,
    e.footer && e.footer.text ? el("div", { class: "footer" }, e.footer.text) : null);
}

function renderAttachment(a) {
  const isImage = (a.content_type || "").startsWith("image/");
  const isAudio = (a.content_type || "").startsWith("audio/");
  return el("div", { class: "attachment" },
    isImage ? followImage(el("img", { src: a.url, alt: a.filename })) : null,
    isAudio ? el("audio", { src: a.url, controls: true }) : null,
    el("a", { href: a.url, target: "_blank", rel: "noopener" }, `📎 ${a.filename} (${Math.ceil(a.size / 1024)} KiB)`));
}

function renderComponents(m) {
  const rows = (m.components || []).filter((r) => r.type === 1);
  if (!rows.length) return null;
  return el("div", { class: "components" }, ...rows.map((row) => el("div", { class: "crow" }, ...row.components.map((c) => {
    if (c.type === 2) {
      const label = [c.emoji && c.emoji.name, c.label].filter(Boolean).join(" ");
      if (c.style === 5) {
        const a = link(c.url, [label + " ↗"]);
        a.classList.add("btn", "s5");
        return a;
      }
      return el("button", { class: `btn s${c.style}`, disabled: c.disabled, type: "button", "data-custom-id": c.custom_id,
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
    if (!subs.length) { out.push({ path, cmd, node, options: node.options || [], description: node.description }); return; }
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
  const menu = $("command-menu");
  if (!input.value.startsWith("/") || (state.selected && input.value === "/" + state.selected.path)) { menu.hidden = true; return; }
  const hits = menuHits();
  state.menuIndex = Math.min(state.menuIndex, Math.max(0, hits.length - 1));
  menu.replaceChildren(...(hits.length ? hits.map((e, i) => el("div", {
    class: i === state.menuIndex ? "item sel" : "item", onclick: () => selectCommand(e) },
    "/" + e.path, el("span", { class: "desc" }, localized(e.node, "description")))) : [el("div", { class: "item" }, "No matching commands (has the bot synced?)")]));
  menu.hidden = false;
}

function menuHits() {
  const q = $("command-input").value.replace(/^\//, "").trim().toLowerCase();
  return state.entries.filter((e) => e.path.toLowerCase().includes(q) ||
    Object.values(e.cmd.name_localizations || {}).some((n) => n.toLowerCase().includes(q)));
}

// Like Discord: arrows move through the command list, Enter or Tab picks the highlighted command.
function menuKeys(ev) {
  if ($("command-menu").hidden) return;
  const hits = menuHits();
  if (!hits.length) return;
  if (ev.key === "ArrowDown" || ev.key === "ArrowUp") {
    ev.preventDefault();
    state.menuIndex = (state.menuIndex + (ev.key === "ArrowDown" ? 1 : hits.length - 1)) % hits.length;
    showMenu();
  } else if (ev.key === "Enter" || ev.key === "Tab") {
    ev.preventDefault();
    selectCommand(hits[state.menuIndex]);
  }
}

// A command's (or option's) text in the acting member's language, as Discord shows it.
const localized = (node, field) => ((node && node[field + "_localizations"]) || {})[state.locale] || (node && node[field]) || "";

function selectCommand(entry) {
  state.selected = entry;
  $("command-input").value = "/" + entry.path;
  $("command-menu").hidden = true;
  state.menuIndex = 0;
  $("options").replaceChildren(...entry.options.map(optionField));
  const first = $("options").querySelector("[data-name]");
  (first || $("command-input")).focus();
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
    opt.description ? " — " + localized(opt, "description") : ""), input);
  if (opt.autocomplete) attachAutocomplete(wrap, input, opt);
  return wrap;
}

function attachAutocomplete(wrap, input, opt) {
  const box = el("div", { class: "suggest", hidden: true });
  wrap.append(box);
  // The command this field belongs to. Pressing Enter soon after typing sends the command and
  // clears state.selected before the debounced lookup below runs: it must then do nothing
  // (it used to read state.selected.path and showed "Cannot read properties of null").
  const entry = state.selected;
  const stale = () => !input.isConnected || state.selected !== entry;
  let timer = null;
  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      if (stale()) return;
      const options = await collectOptions(true);
      options[opt.name] = input.value;
      try {
        const res = await api("POST", "/interactions", {
          kind: "autocomplete", guild_id: state.guildId, channel_id: state.channelId, user_id: state.userId,
          command: entry.path, options, focused: opt.name, wait: "ack", timeout: 3 });
        if (stale()) return;
        const choices = (res.response_data && res.response_data.choices) || [];
        box.replaceChildren(...choices.map((c) => el("div", { onclick: () => { input.value = c.value; box.hidden = true; } }, c.name)));
        box.hidden = !choices.length;
        if (res.rejected.length && !res.acked) showError(`Autocomplete refused: ${res.rejected[0].message}`);
      } catch (err) { if (!stale()) showError(err.message); }
    }, 250);
  });
  input.addEventListener("keydown", (ev) => { if (ev.key === "Enter") { clearTimeout(timer); box.hidden = true; } });
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
  if (state.sending) return;  // a second Enter while the first is on its way
  state.sending = true;
  try {
    const options = await collectOptions();
    const result = await interact({ kind: "slash", command: entry.path, options });
    if (result && result.acked) {
      $("command-input").value = ""; state.selected = null; $("options").replaceChildren();
      state.pinned = true; state.jump = null;
      keepInView();
    }
  } finally {
    state.sending = false;
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
$("user").addEventListener("change", (ev) => { state.userId = ev.target.value; state.lastMessagesKey = ""; refresh(); });
$("locale").addEventListener("change", async (ev) => {
  // The simulated member's client language: their next interactions carry it as `locale`.
  if (!state.userId) return;
  try {
    await api("PATCH", `/users/${state.userId}`, { locale: ev.target.value });
    state.lastMessagesKey = "";
    await refresh();
    toast(`${memberName(state.userId)} now uses Discord in ${ev.target.value}`);
  } catch (err) { showError(err.message); }
});
$("messages").addEventListener("scroll", (ev) => {
  const box = ev.currentTarget;
  state.pinned = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
});
$("command-input").addEventListener("keydown", menuKeys);
$("command-input").addEventListener("input", showMenu);
$("command-input").addEventListener("focus", showMenu);
$("composer").addEventListener("submit", submitCommand);
refresh().then(poll);
