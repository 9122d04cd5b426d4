// A small, safe markdown renderer: it builds DOM nodes and sets only textContent and a
// checked href, so nothing a model writes can become markup or script. Supported: fenced
// code blocks, headings (#..######), bullet and numbered lists, block quotes, paragraphs,
// and inline code, **bold**, *emphasis* and [links](http(s)://... or mailto:) — anything
// else stays text.

const SAFE_LINK = /^(https?:\/\/|mailto:)/i;
const INLINE = /(`[^`\n]+`)|(\*\*[^*\n]+\*\*)|(\*[^*\n]+\*)|(\[[^\]\n]+\]\([^)\s]+\))/;

function inline(parent, text) {
  let rest = text;
  while (rest.length > 0) {
    const match = INLINE.exec(rest);
    if (match === null) {
      parent.append(document.createTextNode(rest));
      return;
    }
    if (match.index > 0) parent.append(document.createTextNode(rest.slice(0, match.index)));
    const token = match[0];
    if (match[1]) {
      const code = document.createElement("code");
      code.textContent = token.slice(1, -1);
      parent.append(code);
    } else if (match[2]) {
      const strong = document.createElement("strong");
      inline(strong, token.slice(2, -2));
      parent.append(strong);
    } else if (match[3]) {
      const em = document.createElement("em");
      inline(em, token.slice(1, -1));
      parent.append(em);
    } else {
      const split = token.indexOf("](");
      const label = token.slice(1, split);
      const href = token.slice(split + 2, -1);
      if (SAFE_LINK.test(href)) {
        const a = document.createElement("a");
        a.href = href;
        a.rel = "noopener noreferrer nofollow";
        a.textContent = label;
        parent.append(a);
      } else {
        parent.append(document.createTextNode(token));
      }
    }
    rest = rest.slice(match.index + token.length);
  }
}

function block(tag, text) {
  const node = document.createElement(tag);
  inline(node, text);
  return node;
}

export function renderMarkdown(source) {
  const fragment = document.createDocumentFragment();
  const lines = source.replace(/\r\n?/g, "\n").split("\n");
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    if (/^```/.test(line)) {
      const body = [];
      i += 1;
      while (i < lines.length && !/^```/.test(lines[i])) body.push(lines[i++]);
      i += 1;
      const pre = document.createElement("pre");
      const code = document.createElement("code");
      code.textContent = body.join("\n");
      pre.append(code);
      fragment.append(pre);
      continue;
    }
    const heading = /^(#{1,6})\s+(.*)$/.exec(line);
    if (heading) {
      fragment.append(block("h" + Math.min(heading[1].length + 2, 6), heading[2]));
      i += 1;
      continue;
    }
    const listKind = /^\s*[-*+]\s+/.test(line) ? "ul" : /^\s*\d+[.)]\s+/.test(line) ? "ol" : null;
    if (listKind) {
      const list = document.createElement(listKind);
      const item = listKind === "ul" ? /^\s*[-*+]\s+(.*)$/ : /^\s*\d+[.)]\s+(.*)$/;
      while (i < lines.length && item.test(lines[i])) {
        list.append(block("li", item.exec(lines[i])[1]));
        i += 1;
      }
      fragment.append(list);
      continue;
    }
    if (/^>\s?/.test(line)) {
      const quoted = [];
      while (i < lines.length && /^>\s?/.test(lines[i])) quoted.push(lines[i++].replace(/^>\s?/, ""));
      fragment.append(block("blockquote", quoted.join(" ")));
      continue;
    }
    if (line.trim() === "") {
      i += 1;
      continue;
    }
    const paragraph = [];
    while (i < lines.length && lines[i].trim() !== "" && !/^(```|#{1,6}\s|>|\s*([-*+]|\d+[.)])\s)/.test(lines[i])) {
      paragraph.push(lines[i++]);
    }
    if (paragraph.length === 0) paragraph.push(lines[i++]);
    fragment.append(block("p", paragraph.join("\n")));
  }
  return fragment;
}

export function renderInto(element, source) {
  element.replaceChildren(renderMarkdown(source));
}
