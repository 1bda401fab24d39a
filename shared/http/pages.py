"""The small HTML pages that the links in our mails open (confirm an address, reset a password, ...).

Rules every page keeps:
- A link changes nothing by being fetched: GET shows a page; only its button sends a POST (a mail
  scanner or a link preview that fetches, HEADs or follows redirects confirms nothing).
- The single-use token travels in the URL fragment (`#token=…`), which browsers never send to a
  server, so no server or load-balancer log holds it. The page's script reads it, removes it from
  the address bar, and sends it in the body of the button's POST (JSON, to the API route).
- Plain HTML, no third-party asset, a strict Content-Security-Policy: one nonce for the one inline
  script and style block, `connect-src 'self'`, `form-action 'none'`, no framing.
"""

from __future__ import annotations

import html
import json
import secrets
from dataclasses import dataclass, field

from shared.http.app import Response

STYLE = """
body{font:16px/1.5 system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem;color:#1d1d1f}
h1{font-size:1.5rem}label{display:block;margin:1rem 0 .25rem;font-weight:600}
input{font:inherit;width:100%;padding:.5rem;box-sizing:border-box}
button{font:inherit;margin-top:1.25rem;padding:.6rem 1.2rem;cursor:pointer}
.hint{font-size:.875rem;color:#555}.error{color:#b00020}.ok{color:#0a6b2d}
"""

# Reads #token, clears it from the address bar, and shows the form for it: the token's form when the
# fragment has a token, else the fallback form (if any). On submit, POSTs {token, fields...} as JSON.
SCRIPT = """
(function () {
  // A link opened in a tab already on this page only changes the fragment: read it afresh.
  window.addEventListener('hashchange', function () { location.reload(); });
  var params = new URLSearchParams(location.hash.slice(1));
  var token = params.get('token') || '';
  if (location.hash) history.replaceState(null, '', location.pathname + location.search);
  var out = document.getElementById('out');
  var forms = [].slice.call(document.querySelectorAll('form[data-conf]'));
  var form = forms.filter(function (f) {
    return JSON.parse(f.dataset.conf).needsToken === !!token;
  })[0];
  if (!form) {
    out.className = 'error'; out.textContent = JSON.parse(forms[0].dataset.conf).noToken; return;
  }
  var conf = JSON.parse(form.dataset.conf);
  var extra = {}, missing = (conf.fragmentFields || []).filter(function (name) {
    extra[name] = params.get(name) || ''; return !extra[name];
  });
  if (missing.length) { out.className = 'error'; out.textContent = conf.noToken; return; }
  form.hidden = false;
  var heading = document.querySelector('h1'); heading.textContent = conf.title;
  document.title = conf.title + ' \u00b7 WizyVision';
  var pw = form.querySelector('input[data-strength]'), hint = form.querySelector('.strength');
  if (pw && hint) pw.addEventListener('input', function () {
    var n = [...pw.value].length, kinds = [/[a-z]/, /[A-Z]/, /[0-9]/, /[^A-Za-z0-9]/]
      .filter(function (r) { return r.test(pw.value); }).length;
    hint.textContent = n < 12 ? (12 - n) + ' more characters needed (12 to 128).'
      : n > 128 ? 'At most 128 characters.'
      : (n >= 16 || kinds >= 3) ? 'Strong enough. A longer passphrase is stronger still.'
      : 'Acceptable; a longer passphrase would be stronger.';
  });
  form.addEventListener('submit', function (e) {
    e.preventDefault();
    var body = Object.assign({}, extra); if (conf.needsToken) body.token = token;
    new FormData(form).forEach(function (v, k) { if (v !== '') body[k] = v; });
    var button = form.querySelector('button'); button.disabled = true;
    fetch(conf.action, {method: 'POST', headers: {'Content-Type': 'application/json'},
                        body: JSON.stringify(body), credentials: 'omit'})
      .then(function (r) { return r.text().then(function (t) {
        var doc = {}; try { doc = JSON.parse(t); } catch (x) {}
        if (r.ok) { out.className = 'ok'; out.textContent = conf.done; form.hidden = true; return; }
        out.className = 'error';
        out.textContent = (doc.detail || doc.title || 'Something went wrong.') +
          (doc.retry_after ? ' (try again in ' + doc.retry_after + ' s)' : '');
        button.disabled = false;
      }); })
      .catch(function () { out.className = 'error'; out.textContent = 'Network error; try again.';
                           button.disabled = false; });
  });
})();
"""


@dataclass(frozen=True)
class PageField:
    name: str
    label: str
    kind: str = "text"  # text | password | email
    autocomplete: str = "off"
    hint: str = ""
    strength: bool = False  # show the live 12-128 strength hint under this field
    required: bool = True


@dataclass(frozen=True)
class ActionPage:
    """A page with one form whose button POSTs JSON to `action` (an API route of the same origin)."""

    title: str
    intro: str
    action: str
    button: str
    done: str
    fields: tuple[PageField, ...] = field(default_factory=tuple)
    needs_token: bool = True
    no_token: str = "This page was opened without its link's code. Open the link from the mail again."  # noqa: S105
    footer: str = ""
    # Other parameters of the fragment (`#request=…&token=…`) sent in the POST's JSON body as they are;
    # a link without one of them shows `no_token`.
    fragment_fields: tuple[str, ...] = ()


def _field_html(form: int, f: PageField) -> str:
    ident = f"f{form}-{f.name}"
    attrs = (
        f'id="{ident}" name="{f.name}" type="{f.kind}" autocomplete="{f.autocomplete}"'
        + (" required" if f.required else "")
        + (' minlength="12" maxlength="128" data-strength' if f.strength else "")
    )
    hint = f'<p class="hint" id="{ident}-hint">{html.escape(f.hint)}</p>' if f.hint else ""
    strength = '<p class="hint strength" aria-live="polite"></p>' if f.strength else ""
    described = f' aria-describedby="{ident}-hint"' if f.hint else ""
    return f'<label for="{ident}">{html.escape(f.label)}</label><input {attrs}{described}>{hint}{strength}'


def _form_html(index: int, page: ActionPage) -> str:
    conf = json.dumps(
        {
            "title": page.title,
            "action": page.action,
            "done": page.done,
            "needsToken": page.needs_token,
            "noToken": page.no_token,
            "fragmentFields": list(page.fragment_fields),
        }
    )
    fields = "".join(_field_html(index, f) for f in page.fields)
    footer = f'<p class="hint">{html.escape(page.footer)}</p>' if page.footer else ""
    return (
        f'<form id="f{index}" data-conf="{html.escape(conf)}" hidden><p>{html.escape(page.intro)}</p>'
        f'{fields}<button type="submit">{html.escape(page.button)}</button>{footer}</form>'
    )


def render_action_page(page: ActionPage, fallback: ActionPage | None = None) -> Response:
    """The page of `page`; when opened without a token and `fallback` is given (a page needing none), that one."""
    nonce = secrets.token_urlsafe(16)
    forms = [page] + ([fallback] if fallback else [])
    body = (
        "".join(_form_html(i, p) for i, p in enumerate(forms))
        + '<p id="out" role="status" aria-live="polite"></p>'
        + "<noscript><p>This page needs JavaScript to send its form.</p></noscript>"
        + f'<script nonce="{nonce}">{SCRIPT}</script>'
    )
    return _page(page.title, body, nonce)


def render_message_page(title: str, text: str, status: int = 200) -> Response:
    nonce = secrets.token_urlsafe(16)
    return _page(title, f"<p>{html.escape(text)}</p>", nonce, status)


def _page(title: str, body: str, nonce: str, status: int = 200) -> Response:
    document = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="referrer" content="no-referrer">'
        f"<title>{html.escape(title)} · WizyVision</title>"
        f'<style nonce="{nonce}">{STYLE}</style></head>'
        f"<body><main><h1>{html.escape(title)}</h1>{body}</main></body></html>"
    )
    csp = (
        f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; connect-src 'self'; "
        "img-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'"
    )
    return Response(
        document,
        status=status,
        content_type="text/html; charset=utf-8",
        headers={"Content-Security-Policy": csp, "Cache-Control": "no-store"},
    )
