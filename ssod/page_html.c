/* page_html.c: the rendering of the API tokens pages (page.h): the page's frame and navigation,
 * the one HTML escaper they use (kw_ssod_markup_escape(), as the SAML pages do), dates in UTC,
 * and the stylesheet and the script that ssod serves itself (nothing is loaded from another
 * site; the Content-Security-Policy allows no inline script or style). */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "metadata.h"
#include "page.h"
#include "store.h"

/* Narrow screens first: one column; the table becomes a list of cards under 700px. Focus is
 * always visible (keyboard use). */
const char kw_page_css[] =
	"*{box-sizing:border-box}\n"
	"body{margin:0;font:16px/1.45 system-ui,sans-serif;color:#1d2330;background:#f5f6f8}\n"
	"header{background:#1d2330;color:#fff;padding:.6rem 1rem;display:flex;flex-wrap:wrap;"
	"gap:.5rem 1.5rem;align-items:center}\n"
	"header .who{margin-left:auto;font-size:.9rem}\n"
	"header form{display:inline}\n"
	"nav a{color:#fff;margin-right:1rem;text-decoration:none;padding:.2rem 0;"
	"display:inline-block}\n"
	"nav a[aria-current=page]{border-bottom:3px solid #ff8c00}\n"
	"main{max-width:72rem;margin:0 auto;padding:1rem}\n"
	"h1{font-size:1.4rem}\n"
	".mark{color:#b00020;font-weight:bold}\n"
	"table{border-collapse:collapse;width:100%;background:#fff}\n"
	"th,td{text-align:left;padding:.45rem .5rem;border-bottom:1px solid #dde;"
	"vertical-align:top;overflow-wrap:break-word}\n"
	"td.long{overflow-wrap:anywhere;min-width:8rem}\n"
	"td .button,td button{white-space:nowrap}\n"
	"caption{text-align:left;padding:.3rem 0}\n"
	"th{background:#e9ebf0;font-size:.85rem}\n"
	"label{display:block;font-weight:600;margin-top:.8rem}\n"
	"input[type=text],input[type=date],select,textarea{font:inherit;padding:.35rem;"
	"width:100%;max-width:28rem;border:1px solid #99a;border-radius:4px}\n"
	"fieldset{border:1px solid #ccd;margin-top:.8rem;max-width:28rem}\n"
	"fieldset label{display:inline;font-weight:normal;margin:0 1rem 0 .2rem}\n"
	"fieldset label.block{display:block;font-weight:600;margin:.6rem 0 .2rem}\n"
	".filters{display:flex;flex-wrap:wrap;gap:.5rem 1rem;align-items:flex-end;"
	"margin-bottom:1rem}\n"
	".filters label{margin:0}\n"
	".filters select{width:auto}\n"
	"button,.button{font:inherit;padding:.4rem .9rem;border:1px solid #1d2330;"
	"border-radius:4px;background:#fff;color:#1d2330;cursor:pointer;"
	"text-decoration:none;display:inline-block;margin-top:.8rem}\n"
	"button.primary,.button.primary{background:#ff8c00;border-color:#ff8c00;color:#000}\n"
	"button.danger{background:#b00020;border-color:#b00020;color:#fff}\n"
	"td button,td .button{margin:0;padding:.2rem .6rem}\n"
	"header button{margin:0;padding:.1rem .5rem;background:transparent;color:#fff;"
	"border-color:#fff}\n"
	":focus-visible{outline:3px solid #ff8c00;outline-offset:2px}\n"
	".notice{background:#fff;border-left:4px solid #ff8c00;padding:.6rem 1rem;"
	"margin:1rem 0}\n"
	".error{background:#fff0f0;border-left:4px solid #b00020;padding:.6rem 1rem;"
	"margin:1rem 0}\n"
	".secret{font-family:monospace;font-size:1rem;width:100%;padding:.5rem;"
	"border:2px solid #1d2330;background:#fff;overflow-wrap:anywhere}\n"
	".case{background:#fff;border:1px solid #ccd;padding:.4rem 1rem 1rem;"
	"margin-bottom:1rem}\n"
	".muted{color:#556}\n"
	"label.inline{display:inline;font-weight:normal}\n"
	"@media (max-width:700px){thead{display:none}table,tbody,tr,td{display:block}"
	"tr{margin-bottom:.8rem;border:1px solid #ccd}caption{display:block}"
	"td{border:0;padding:.2rem .5rem}"
	"td::before{content:attr(data-label) \": \";font-weight:600}}\n";

/* The copy button of the secret page: the only script. */
const char kw_page_js[] =
	"'use strict';\n"
	"document.addEventListener('DOMContentLoaded', function () {\n"
	"  var b = document.getElementById('copy'), s = document.getElementById('secret'),\n"
	"      st = document.getElementById('copy-status');\n"
	"  if (!b || !s) return;\n"
	"  b.hidden = false;\n"
	"  b.addEventListener('click', function () {\n"
	"    function done(ok) { st.textContent = ok ? 'Copied to the clipboard.' :\n"
	"      'Select the token and copy it (Ctrl+C).'; }\n"
	"    s.focus(); s.select();\n"
	"    if (navigator.clipboard && navigator.clipboard.writeText) {\n"
	"      navigator.clipboard.writeText(s.value).then(function () { done(true); },\n"
	"        function () { done(document.execCommand('copy')); });\n"
	"    } else { done(document.execCommand('copy')); }\n"
	"  });\n"
	"});\n";

void kw_page_raw(struct kw_page *p, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(p->f, fmt, ap);
	va_end(ap);
}

void kw_page_text(struct kw_page *p, const char *s)
{
	kw_ssod_markup_escape(p->f, s != NULL ? s : "");
}

void kw_page_time(struct kw_page *p, int64_t t, const char *none)
{
	time_t tt = (time_t)t;
	struct tm tm;
	char buf[32];

	if (t == 0 || t == KW_NEVER || gmtime_r(&tt, &tm) == NULL) {
		kw_page_text(p, none);
		return;
	}
	strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M", &tm);
	kw_page_raw(p, "<time datetime=\"%04d-%02d-%02dT%02d:%02d:%02dZ\">%s UTC</time>",
		    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		    buf);
}

void kw_page_csrf(struct kw_page *p, const char *csrf)
{
	kw_page_raw(p, "<input type=\"hidden\" name=\"csrf\" value=\"");
	kw_page_text(p, csrf);
	kw_page_raw(p, "\">");
}

static void nav_link(struct kw_page *p, const struct kw_page_nav *nav, const char *id,
		     const char *href, const char *label, bool mark)
{
	bool cur = nav->current != NULL && strcmp(nav->current, id) == 0;

	kw_page_raw(p, "<a href=\"%s\"%s>%s%s</a>", href, cur ? " aria-current=\"page\"" : "",
		    label,
		    mark ? " <span class=\"mark\" title=\"a token expires within 7 days\">!</span>"
			 : "");
}

void kw_page_begin(struct kw_page *p, const char *title, const struct kw_page_nav *nav)
{
	memset(p, 0, sizeof(*p));
	p->f = open_memstream(&p->text, &p->len);
	if (p->f == NULL)
		abort();
	kw_page_raw(p, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
		       "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
		       "<title>");
	kw_page_text(p, title);
	kw_page_raw(p, " · keywarden</title><link rel=\"stylesheet\" href=\"/static/page.css\">"
		       "<script src=\"/static/page.js\" defer></script></head>\n<body>\n"
		       "<header><strong>keywarden</strong>");
	if (nav != NULL && nav->login != NULL) {
		kw_page_raw(p, "<nav aria-label=\"Profile\">");
		nav_link(p, nav, "tokens", "/tokens", "API tokens", nav->expiring);
		nav_link(p, nav, "new", "/tokens/new", "Create API token", false);
		nav_link(p, nav, "notifications", "/notifications", "Notifications", false);
		if (nav->admin)
			nav_link(p, nav, "review", "/review", "SSO review", false);
		kw_page_raw(p, "</nav><span class=\"who\">Signed in as <strong id=\"who\">");
		kw_page_text(p, nav->login);
		kw_page_raw(p, "</strong> (<span id=\"my-role\">");
		kw_page_text(p, nav->role);
		kw_page_raw(p, "</span>) <form method=\"post\" action=\"/signout\">");
		kw_page_csrf(p, nav->csrf);
		kw_page_raw(p, "<button type=\"submit\">Sign out</button></form></span>");
	}
	kw_page_raw(p, "</header>\n<main id=\"main\">\n<h1>");
	kw_page_text(p, title);
	kw_page_raw(p, "</h1>\n");
}

void kw_page_end(struct kw_page *p, struct kw_api_answer *a, int status)
{
	kw_page_raw(p, "\n</main>\n</body></html>\n");
	if (fclose(p->f) != 0)
		abort();
	a->status = status;
	a->body = p->text;
	a->len = p->len;
	a->content_type = "text/html; charset=utf-8";
	a->page = true;
	p->f = NULL;
	p->text = NULL;
}
