// Playground chat page: talks to /playground/api/* and renders Bot API messages the way Telegram does.
// Message text is rendered from text + entities by building DOM nodes (never innerHTML), so anything a user
// or the bot writes is shown as text. Edited messages replace their bubble in place.
"use strict";

(function () {
  const API = "/playground/api";
  const SAFE_SCHEMES = ["http:", "https:", "mailto:", "tel:", "tg:"];
  const BLOCK_TYPES = new Set(["blockquote", "expandable_blockquote", "pre"]);

  const els = {
    chat: document.getElementById("chat"),
    messages: document.getElementById("messages"),
    typing: document.getElementById("typing"),
    status: document.getElementById("bot-status"),
    banner: document.getElementById("banner"),
    toast: document.getElementById("toast"),
    form: document.getElementById("composer"),
    input: document.getElementById("input"),
    menuButton: document.getElementById("menu-button"),
    commands: document.getElementById("commands"),
  };

  const state = {
    rev: 0,
    run: null, // the playground run the messages come from; a restarted playground has a new one
    nodes: new Map(), // message_id -> element
    signatures: new Map(), // message_id -> JSON of the message last rendered
    commands: [],
    waitingSince: 0, // ms timestamp of the last user action still awaiting a bot reply, or 0
  };

  // ---------- rendering of text + entities ----------

  function safeUrl(raw) {
    try {
      const url = new URL(raw, window.location.href);
      return SAFE_SCHEMES.includes(url.protocol) ? url.href : null;
    } catch (_) {
      return null;
    }
  }

  // A link element for a URL, or a plain span when the URL is not one a chat link may use (javascript: etc.).
  function link(href, showTitle) {
    const url = safeUrl(href);
    if (!url) return document.createElement("span");
    const a = document.createElement("a");
    a.href = url;
    if (url.startsWith("http")) {
      a.target = "_blank";
      a.rel = "noopener noreferrer";
    }
    if (showTitle) a.title = url;
    return a;
  }

  // One element for one entity; children are appended into the returned `host`.
  function entityElement(entity, text) {
    const body = text.slice(entity.offset, entity.offset + entity.length);
    let el;
    switch (entity.type) {
      case "bold": el = document.createElement("strong"); break;
      case "italic": el = document.createElement("em"); break;
      case "underline": el = document.createElement("u"); break;
      case "strikethrough": el = document.createElement("s"); break;
      case "code": el = document.createElement("code"); break;
      case "pre": {
        const pre = document.createElement("pre");
        const code = document.createElement("code");
        if (entity.language) code.dataset.language = entity.language;
        pre.append(code);
        return { el: pre, host: code };
      }
      case "text_link": el = link(entity.url, true); break;
      case "url": el = link(/^[a-z][a-z0-9+.-]*:/i.test(body) ? body : "http://" + body); break;
      case "email": el = link("mailto:" + body); break;
      case "phone_number": el = link("tel:" + body.replace(/[^+\d]/g, "")); break;
      case "mention":
      case "text_mention":
      case "hashtag":
      case "cashtag":
        el = document.createElement("span");
        el.className = "mention";
        break;
      case "bot_command": {
        el = document.createElement("a");
        el.className = "command-link";
        el.href = "#";
        el.setAttribute("role", "button");
        el.title = "Send " + body;
        el.addEventListener("click", (ev) => {
          ev.preventDefault();
          sendText(body.split("@")[0]);
        });
        break;
      }
      case "spoiler": {
        el = document.createElement("span");
        el.className = "spoiler";
        el.tabIndex = 0;
        el.setAttribute("role", "button");
        el.setAttribute("aria-label", "Hidden text, press to reveal");
        const reveal = () => {
          el.classList.add("revealed");
          el.removeAttribute("role");
          el.removeAttribute("aria-label");
          el.removeAttribute("tabindex");
        };
        el.addEventListener("click", reveal);
        el.addEventListener("keydown", (ev) => {
          if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); reveal(); }
        });
        break;
      }
      case "blockquote":
        el = document.createElement("blockquote");
        break;
      case "expandable_blockquote": {
        const quote = document.createElement("blockquote");
        quote.className = "expandable collapsed";
        const bodyEl = document.createElement("span");
        bodyEl.className = "quote-body";
        const toggle = document.createElement("button");
        toggle.type = "button";
        toggle.className = "quote-toggle";
        toggle.textContent = "Show more";
        toggle.setAttribute("aria-expanded", "false");
        toggle.addEventListener("click", () => {
          const collapsed = quote.classList.toggle("collapsed");
          toggle.textContent = collapsed ? "Show more" : "Show less";
          toggle.setAttribute("aria-expanded", String(!collapsed));
        });
        quote.append(bodyEl, toggle);
        return { el: quote, host: bodyEl };
      }
      default:
        el = document.createElement("span"); // custom_emoji and future types: plain text
    }
    return { el, host: el };
  }

  // Append text[start:end) into parent, formatting the (sorted, nested) entities inside that range.
  function renderRange(parent, text, start, end, entities) {
    let pos = start;
    let i = 0;
    let lastWasBlock = false;
    const appendText = (from, to, beforeBlock) => {
      let chunk = text.slice(from, to);
      // Block quotes and code blocks are their own lines; drop the line breaks that separate them.
      if (lastWasBlock && chunk.startsWith("\n")) chunk = chunk.slice(1);
      if (beforeBlock && chunk.endsWith("\n")) chunk = chunk.slice(0, -1);
      if (chunk) parent.append(document.createTextNode(chunk));
    };
    while (i < entities.length) {
      const e = entities[i];
      const eStart = Math.max(e.offset, pos);
      const eEnd = Math.min(e.offset + e.length, end);
      let j = i + 1;
      const inner = [];
      while (j < entities.length && entities[j].offset < e.offset + e.length) {
        const c = entities[j];
        const cStart = Math.max(c.offset, eStart);
        const cEnd = Math.min(c.offset + c.length, eEnd);
        if (cEnd > cStart) inner.push(Object.assign({}, c, { offset: cStart, length: cEnd - cStart }));
        j++;
      }
      i = j;
      if (eEnd <= eStart) continue;
      const isBlock = BLOCK_TYPES.has(e.type);
      appendText(pos, eStart, isBlock);
      const { el, host } = entityElement(e, text);
      renderRange(host, text, eStart, eEnd, inner);
      parent.append(el);
      pos = eEnd;
      lastWasBlock = isBlock;
    }
    appendText(pos, end, false);
  }

  function renderText(text, entities) {
    const div = document.createElement("div");
    div.className = "text";
    const sorted = (entities || [])
      .filter((e) => Number.isInteger(e.offset) && Number.isInteger(e.length) && e.length > 0)
      .slice()
      .sort((a, b) => a.offset - b.offset || b.length - a.length);
    renderRange(div, text, 0, text.length, sorted);
    return div;
  }

  // ---------- inline keyboards ----------

  function renderKeyboard(message) {
    const rows = (message.reply_markup && message.reply_markup.inline_keyboard) || [];
    if (!rows.length) return null;
    const kb = document.createElement("div");
    kb.className = "keyboard";
    kb.setAttribute("role", "group");
    kb.setAttribute("aria-label", "Buttons");
    for (const row of rows) {
      const rowEl = document.createElement("div");
      rowEl.className = "keyboard-row";
      for (const button of row) rowEl.append(renderButton(message, button));
      kb.append(rowEl);
    }
    return kb;
  }

  function renderButton(message, button) {
    if (button.url) {
      const a = link(button.url);
      a.classList.add("kb-button");
      a.textContent = button.text;
      const arrow = document.createElement("span");
      arrow.className = "external";
      arrow.setAttribute("aria-hidden", "true");
      arrow.textContent = "↗";
      a.append(arrow);
      return a;
    }
    const b = document.createElement("button");
    b.type = "button";
    b.className = "kb-button";
    b.textContent = button.text;
    if (typeof button.callback_data === "string") {
      b.dataset.callback = button.callback_data;
      b.addEventListener("click", () => press(message.message_id, button.callback_data, b));
    } else {
      b.disabled = true;
      b.title = "This kind of button does not work in the playground";
    }
    return b;
  }

  // ---------- messages ----------

  function timeOf(unix) {
    const d = new Date(unix * 1000);
    return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  function senderName(message) {
    return message.from && !message.from.is_bot ? "You" : (message.from && message.from.first_name) || "Bot";
  }

  // The quoted header Telegram shows above a reply; pressing it scrolls to the original message.
  function renderReplyHeader(original) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "reply-header";
    const name = document.createElement("span");
    name.className = "reply-name";
    name.textContent = senderName(original);
    const text = document.createElement("span");
    text.className = "reply-text";
    text.textContent = (original.text || original.caption || "").split("\n")[0];
    button.append(name, text);
    button.setAttribute("aria-label", "In reply to " + name.textContent + ": " + text.textContent + ". Show it");
    button.addEventListener("click", () => {
      const target = state.nodes.get(original.message_id);
      if (!target) return;
      target.scrollIntoView({ block: "center" });
      target.classList.remove("highlight");
      void target.offsetWidth; // restart the animation
      target.classList.add("highlight");
    });
    return button;
  }

  function renderMessage(message) {
    const outgoing = Boolean(message.outgoing);
    const wrap = document.createElement("article");
    wrap.className = "msg " + (outgoing ? "user" : "bot");
    wrap.dataset.messageId = String(message.message_id);
    wrap.setAttribute("aria-label", outgoing ? "You said" : "Bot replied");

    const bubble = document.createElement("div");
    bubble.className = "bubble";
    if (message.reply_to_message) bubble.append(renderReplyHeader(message.reply_to_message));
    const text = message.text !== undefined ? message.text : message.caption || "";
    const entities = message.text !== undefined ? message.entities : message.caption_entities;
    bubble.append(renderText(text, entities));

    const meta = document.createElement("span");
    meta.className = "meta";
    meta.textContent = (message.edit_date ? "edited " : "") + timeOf(message.edit_date || message.date);
    bubble.append(meta);
    wrap.append(bubble);

    const kb = renderKeyboard(message);
    if (kb) wrap.append(kb);
    return wrap;
  }

  function nearBottom() {
    const c = els.chat;
    return c.scrollHeight - c.scrollTop - c.clientHeight < 120;
  }

  function scrollToBottom() {
    els.chat.scrollTop = els.chat.scrollHeight;
  }

  // Add a message, or replace its bubble in place when it was edited (e.g. the next page of a list).
  function upsert(message) {
    const signature = JSON.stringify(message);
    if (state.signatures.get(message.message_id) === signature) return;
    const node = renderMessage(message);
    const old = state.nodes.get(message.message_id);
    if (old) {
      node.classList.add("updated");
      old.replaceWith(node);
    } else {
      els.messages.append(node);
    }
    state.nodes.set(message.message_id, node);
    state.signatures.set(message.message_id, signature);
    if (!message.outgoing) setWaiting(false);
  }

  function remove(messageId) {
    const old = state.nodes.get(messageId);
    if (old) old.remove();
    state.nodes.delete(messageId);
    state.signatures.delete(messageId);
  }

  function clearAll() {
    els.messages.replaceChildren();
    state.nodes.clear();
    state.signatures.clear();
  }

  // ---------- status, typing, toasts ----------

  // The bot registers its command menu when it has started, so an empty menu means it is still starting.
  function idleStatus() {
    return state.commands.length ? "local playground · bot online" : "local playground · starting the bot…";
  }

  let typingTimer = null;
  function setWaiting(on) {
    state.waitingSince = on ? Date.now() : 0;
    els.typing.hidden = !on;
    els.status.textContent = on ? "typing…" : idleStatus();
    els.status.classList.toggle("typing-now", on);
    clearTimeout(typingTimer);
    if (on) {
      typingTimer = setTimeout(() => {
        els.typing.hidden = true;
        els.status.classList.remove("typing-now");
        els.status.textContent = "no reply yet: check the bot's log in the terminal";
      }, 15000);
    }
  }

  let toastTimer = null;
  function toast(text) {
    els.toast.textContent = text;
    els.toast.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { els.toast.hidden = true; }, 4000);
  }

  function banner(text) {
    els.banner.textContent = text || "";
    els.banner.hidden = !text;
  }

  // ---------- API ----------

  async function post(path, body) {
    const res = await fetch(API + path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    const data = await res.json().catch(() => ({}));
    if (!res.ok || !data.ok) throw new Error(data.error || "request failed (" + res.status + ")");
    return data;
  }

  async function sendText(text) {
    text = text.trim();
    if (!text) return;
    hideCommands();
    setWaiting(true); // before sending: the reply may arrive before this request returns
    try {
      const data = await post("/send", { text });
      if (data.message) upsert(data.message);
      scrollToBottom();
    } catch (err) {
      setWaiting(false);
      toast("Could not send: " + err.message);
    }
  }

  async function press(messageId, data, buttonEl) {
    buttonEl.classList.add("pressed");
    buttonEl.setAttribute("aria-busy", "true");
    setWaiting(true);
    try {
      await post("/press", { message_id: messageId, data });
    } catch (err) {
      setWaiting(false);
      toast("Could not press the button: " + err.message);
    } finally {
      setTimeout(() => {
        buttonEl.classList.remove("pressed");
        buttonEl.removeAttribute("aria-busy");
      }, 600);
    }
  }

  async function pollLoop() {
    let failures = 0;
    for (;;) {
      try {
        const res = await fetch(API + "/updates?since=" + state.rev);
        if (!res.ok) throw new Error("status " + res.status);
        const data = await res.json();
        if (state.run !== null && data.run !== state.run && !data.reset) {
          // The playground was restarted: this reply is relative to a revision of the old run. Start over.
          state.run = data.run;
          state.rev = 0;
          clearAll();
          continue;
        }
        state.run = data.run;
        const stick = nearBottom();
        if (data.reset) clearAll(); // the playground was restarted: show its conversation instead
        for (const id of data.deleted || []) remove(id);
        for (const m of data.messages || []) upsert(m);
        for (const note of data.notices || []) {
          toast(note);
          setWaiting(false);
        }
        if ((data.messages || []).length && stick) scrollToBottom();
        state.rev = data.rev;
        if (failures) banner("");
        if (!state.waitingSince) els.status.textContent = idleStatus();
        failures = 0;
      } catch (err) {
        failures++;
        banner("Lost the connection to the playground. Is `make run` still running? Retrying…");
        await new Promise((r) => setTimeout(r, Math.min(5000, 500 * failures)));
      }
    }
  }

  // ---------- commands menu ----------

  async function loadCommands() {
    try {
      const res = await fetch(API + "/commands");
      const data = await res.json();
      state.commands = data.commands || [];
    } catch (_) {
      state.commands = [];
    }
    els.menuButton.disabled = state.commands.length === 0;
    if (!state.waitingSince) els.status.textContent = idleStatus();
    return state.commands;
  }

  function showCommands(filter) {
    const items = state.commands.filter((c) => !filter || ("/" + c.command).startsWith(filter));
    els.commands.replaceChildren();
    if (!items.length) return hideCommands();
    for (const c of items) {
      const item = document.createElement("button");
      item.type = "button";
      item.className = "command-item";
      item.setAttribute("role", "menuitem");
      const name = document.createElement("span");
      name.className = "name";
      name.textContent = "/" + c.command;
      const desc = document.createElement("span");
      desc.className = "desc";
      desc.textContent = c.description || "";
      item.append(name, desc);
      item.addEventListener("click", () => {
        els.input.value = "";
        autosize();
        sendText("/" + c.command);
        els.input.focus();
      });
      item.addEventListener("keydown", (ev) => menuKeys(ev, item));
      els.commands.append(item);
    }
    els.commands.hidden = false;
    els.menuButton.setAttribute("aria-expanded", "true");
  }

  function hideCommands() {
    els.commands.hidden = true;
    els.menuButton.setAttribute("aria-expanded", "false");
  }

  function menuKeys(ev, item) {
    if (ev.key === "ArrowDown" && item.nextElementSibling) { ev.preventDefault(); item.nextElementSibling.focus(); }
    if (ev.key === "ArrowUp") {
      ev.preventDefault();
      (item.previousElementSibling || els.input).focus();
    }
    if (ev.key === "Escape") { hideCommands(); els.menuButton.focus(); }
  }

  // ---------- composer ----------

  function autosize() {
    els.input.style.height = "auto";
    els.input.style.height = Math.min(els.input.scrollHeight + 2, 160) + "px";
  }

  els.form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const text = els.input.value;
    els.input.value = "";
    autosize();
    sendText(text);
    els.input.focus();
  });

  els.input.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
      ev.preventDefault();
      els.form.requestSubmit();
    } else if (ev.key === "ArrowDown" && !els.commands.hidden) {
      const first = els.commands.querySelector(".command-item");
      if (first) { ev.preventDefault(); first.focus(); }
    } else if (ev.key === "Escape") {
      hideCommands();
    }
  });

  els.input.addEventListener("input", () => {
    autosize();
    const v = els.input.value;
    if (v.startsWith("/") && !/\s/.test(v)) showCommands(v);
    else hideCommands();
  });

  els.menuButton.addEventListener("click", async () => {
    if (!els.commands.hidden) return hideCommands();
    await loadCommands();
    showCommands("");
    const first = els.commands.querySelector(".command-item");
    if (first) first.focus();
  });

  document.addEventListener("click", (ev) => {
    if (!els.commands.hidden && !els.commands.contains(ev.target) && !els.menuButton.contains(ev.target)) {
      hideCommands();
    }
  });

  // The bot registers its commands (setMyCommands) when it starts, possibly after the page loaded.
  (async function waitForCommands() {
    for (let i = 0; i < 30 && !(await loadCommands()).length; i++) {
      await new Promise((r) => setTimeout(r, 1000));
    }
  })();

  pollLoop();
  els.input.focus();
})();
