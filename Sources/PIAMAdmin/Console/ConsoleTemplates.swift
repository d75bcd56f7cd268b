import Mustache

/// The consoles' templates and stylesheet, compiled in (no files to install, no CDN). Every
/// value is inserted with `{{…}}`, which HTML-escapes it: names, ids and e-mails are input from
/// partners. The only unescaped insertion is the layout's `{{{content}}}`, itself a rendered
/// (escaped) template.
enum ConsoleTemplates {
    static let library: MustacheLibrary = {
        var lib = MustacheLibrary()
        for (name, text) in templates.merging(reviewTemplates, uniquingKeysWith: { a, _ in a })
            .merging(ConsoleRolloutTemplates.templates, uniquingKeysWith: { a, _ in a }) {
            do { try lib.register(text, named: name) } catch { fatalError("console template \(name): \(error)") }
        }
        return lib
    }()

    /// The hidden fields every form carries: the session's CSRF token and where to go back to.
    static let hidden = #"<input type="hidden" name="csrf" value="{{csrf}}"><input type="hidden" name="back" value="{{back}}">"#

    static let templates: [String: String] = [
        "layout": """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
            <title>{{title}} · PIAM</title><link rel="stylesheet" href="/console/static/console.css"></head>
            <body><header class="top"><a class="brand" href="/console">PIAM</a>
            {{#user}}<nav>{{#nav}}<a href="{{href}}"{{#current}} aria-current="page"{{/current}}>{{label}}</a>{{/nav}}</nav>
            <div class="who"><span id="who">{{user}}</span> <small>{{role}}</small>
            <form method="post" action="/console/sign-out" class="inline"><input type="hidden" name="csrf" value="{{csrf}}"><button class="link">Sign out</button></form></div>{{/user}}
            </header><main>
            {{#flash}}<p class="flash {{kind}}" id="flash">{{text}}{{#link}}<br>Invitation link (shown once): <a id="invitation-link" href="{{link}}">{{link}}</a>{{/link}}</p>{{/flash}}
            {{{content}}}
            </main></body></html>
            """,
        "error": """
            <h1>{{status}} {{phrase}}</h1><p class="problem"><code id="code">{{code}}</code> <span id="message">{{message}}</span></p>
            <p><a href="/console">Back to the console</a></p>
            """,
        "refused": """
            <h1>Refused</h1>
            <p class="problem">The server refused <strong>{{operation}}</strong>: <code id="code">{{code}}</code></p>
            <p id="message">{{message}}</p><p class="muted">Status {{status}}. The refusal is in the audit log.</p>
            <p><a href="{{back}}">Back</a></p>
            """,
        "sign-in": """
            <h1>Sign in</h1>
            <p>The consoles use piam-admind's own authentication: the business's reverse proxy signs people in and names them
            in its trusted header, or a request carries a bearer credential.</p>
            {{#demo}}<p><a class="button" href="/console/demo-sign-in">Demo sign-in</a> — pick a demo identity (this piam-admind runs with <code>--demo</code>).</p>{{/demo}}
            """,
        "demo-sign-in": """
            <h1>Demo sign-in</h1>
            <p class="muted">Offered because piam-admind runs with <code>--demo</code> on a loopback address. Pick who to be:</p>
            <ul class="cards">{{#identities}}<li><form method="post" action="/console/demo-sign-in">\(hidden)
            <input type="hidden" name="user" value="{{user}}"><button id="as-{{user}}">{{user}}</button> <span class="muted">{{what}}</span></form></li>{{/identities}}</ul>
            <form method="post" action="/console/demo-sign-in" class="row">\(hidden)
            <label>Any user id or alias <input name="user" id="demo-user" required></label><button id="demo-go">Sign in</button></form>
            """,
        "dashboard": """
            <h1>Dashboard</h1>
            <div class="stats"><a href="/console/partners?status=active"><b>{{active}}</b> active partners</a>
            <a href="/console/partners?status=pending"><b>{{pending_count}}</b> pending registrations</a>
            <a href="/console/partners?status=suspended"><b>{{suspended}}</b> suspended</a><span><b>{{people}}</b> partner people</span></div>
            {{#tiles}}{{> usage-tiles}}{{/tiles}}
            <h2>Pending registrations</h2>
            {{^pending}}<p class="muted">None.</p>{{/pending}}<ul>{{#pending}}<li><a href="/console/orgs/{{id}}">{{name}}</a> <code>{{id}}</code></li>{{/pending}}</ul>
            <h2>Recent refusals</h2>
            {{^refusals}}<p class="muted">None recently.</p>{{/refusals}}
            {{> audit-table}}
            """,
        "audit-table": """
            <div class="scroll"><table class="audit"><thead><tr><th>#</th><th>When</th><th>Actor</th><th>Operation</th><th>Target</th><th>Decision</th></tr></thead><tbody>
            {{#refusals}}{{> audit-row}}{{/refusals}}{{#rows}}{{> audit-row}}{{/rows}}
            </tbody></table></div>
            """,
        "audit-row": """
            <tr{{#refused}} class="refused"{{/refused}}><td>{{id}}</td><td>{{at}}</td><td>{{actor}}<br><small>{{credential}}</small></td><td>{{operation}}</td>
            <td><code>{{target}}</code></td><td>{{decision}} <code>{{reason}}</code><br><small>{{message}}</small></td></tr>
            """,
        "partners": """
            <h1>Partners</h1>
            <p><a class="button" id="register-partner" href="/console/partners/register">Register a partner…</a></p>
            <form method="get" action="/console/partners" class="row"><input name="q" value="{{q}}" placeholder="id or name starts with…">
            <select name="status"><option value="">any status</option><option>active</option><option>pending</option><option>suspended</option></select>
            <button>Search</button></form>
            <p class="muted">{{total}} partners{{#status}} ({{status}}){{/status}}.{{^usage_known}} No usage files are configured (usage.paths): activity is not known.{{/usage_known}}</p>
            <div class="scroll"><table><thead><tr><th>Partner</th><th>Status</th><th>People</th><th>Active over 30 days</th></tr></thead><tbody>
            {{#rows}}<tr><td><a href="{{href}}">{{name}}</a><br><code>{{id}}</code></td><td><span class="status {{status}}">{{status}}</span></td><td>{{people}}</td><td>{{active30}}</td></tr>{{/rows}}
            </tbody></table></div>{{#next}}<p><a href="{{next}}">Next page</a></p>{{/next}}
            """,
        "org": """
            <p class="crumbs">{{#path}}<a href="{{href}}">{{name}}</a> › {{/path}}</p>
            <h1>{{name}} <span class="status {{status}}" id="org-status">{{status}}</span></h1>
            <p class="muted"><code>{{id}}</code> · {{kind}} · <a href="{{people_href}}">{{people}} people</a> in its subtree</p>
            <div class="actions">
            {{#can_approve}}<form method="post" action="/console/act" id="approve-form">\(hidden)<input type="hidden" name="op" value="org.approve"><input type="hidden" name="org" value="{{id}}">
            <fieldset><legend>Approve with entitlements</legend>{{#all_roles}}<label class="check"><input type="checkbox" name="entitle" value="{{id}}"> {{id}}</label>{{/all_roles}}</fieldset>
            <button id="approve">Approve</button></form>
            <form method="post" action="/console/act">\(hidden)<input type="hidden" name="op" value="org.reject"><input type="hidden" name="org" value="{{id}}"><button class="danger" id="reject">Reject the registration</button></form>{{/can_approve}}
            {{#can_suspend}}<a class="button danger" id="suspend" href="{{suspend_href}}">Suspend…</a>{{/can_suspend}}
            {{#can_reactivate}}<form method="post" action="/console/act">\(hidden)<input type="hidden" name="op" value="org.reactivate"><input type="hidden" name="org" value="{{id}}"><button id="reactivate">Reactivate</button></form>{{/can_reactivate}}
            </div>
            <section><h2>Sub-organizations</h2>
            {{^children}}<p class="muted">None.</p>{{/children}}<ul class="tree">{{#children}}<li><a href="{{href}}">{{name}}</a> <code>{{id}}</code> <span class="status {{status}}">{{status}}</span> · {{people}} people</li>{{/children}}</ul>
            {{#can_create}}<form method="post" action="/console/act" class="row">\(hidden)<input type="hidden" name="op" value="org.create"><input type="hidden" name="parent" value="{{id}}">
            <label>New sub-org id <input name="org" id="suborg-id" required></label><label>Name <input name="name" id="suborg-name"></label><button id="create-suborg">Create</button></form>{{/can_create}}
            </section>
            <section><h2>People</h2><ul>{{#members}}<li><a href="{{href}}">{{id}}</a></li>{{/members}}</ul><p><a href="{{people_href}}">All people of this org…</a></p>
            {{#can_invite}}<form method="post" action="/console/act" class="row" id="invite-form">\(hidden)<input type="hidden" name="op" value="user.invite"><input type="hidden" name="org" value="{{id}}">
            <label>User id <input name="user" id="invite-user" required></label><label>Name <input name="name" id="invite-name"></label>
            <label>E-mail <input name="email" type="email" id="invite-email"></label><button id="invite">Invite</button></form>{{/can_invite}}
            </section>
            <section><h2>Ceiling</h2><p class="muted">Roles entitled to this org or above it: what its people may be given.</p>
            {{#ceiling_empty}}<p class="muted">None.</p>{{/ceiling_empty}}
            <ul>{{#ceiling}}<li><code>{{role}}</code> <small>from {{from}}</small>{{#direct}}{{#can_entitle}} <form method="post" action="/console/act" class="inline">\(hidden)<input type="hidden" name="op" value="unentitle"><input type="hidden" name="org" value="{{id}}"><input type="hidden" name="role" value="{{role}}"><button class="link">remove</button></form>{{/can_entitle}}{{/direct}}</li>{{/ceiling}}</ul>
            {{#can_entitle}}<form method="post" action="/console/act" class="row">\(hidden)<input type="hidden" name="op" value="entitle"><input type="hidden" name="org" value="{{id}}">
            <select name="role">{{#all_roles}}<option>{{id}}</option>{{/all_roles}}</select><button>Entitle</button></form>{{/can_entitle}}
            </section>
            <section><h2>Org grants</h2><p class="muted">Roles every member holds.</p>
            <ul>{{#grants}}<li><code>{{role}}</code>{{#include_suborgs}} (and sub-orgs){{/include_suborgs}} {{valid_until}}
            {{#can_revoke}}<form method="post" action="/console/act" class="inline">\(hidden)<input type="hidden" name="op" value="org-revoke"><input type="hidden" name="org" value="{{id}}"><input type="hidden" name="role" value="{{role}}"><button class="link">revoke</button></form>{{/can_revoke}}</li>{{/grants}}</ul>
            {{#can_grant}}<form method="post" action="/console/act" class="row">\(hidden)<input type="hidden" name="op" value="org-grant"><input type="hidden" name="org" value="{{id}}">
            <select name="role">{{#grantable}}<option>{{id}}</option>{{/grantable}}</select><label class="check"><input type="checkbox" name="include_suborgs" value="true"> with sub-orgs</label><button>Grant to the org</button></form>{{/can_grant}}
            </section>
            {{> org-usage}}
            {{> org-namespaces}}
            {{#can_update}}<section><h2>Rename</h2><form method="post" action="/console/act" class="row">\(hidden)<input type="hidden" name="op" value="org.update"><input type="hidden" name="org" value="{{id}}">
            <input name="name" value="{{name}}" required><button>Rename</button></form></section>{{/can_update}}
            """,
        "confirm-suspend": """
            <h1>Suspend {{name}}?</h1>
            <p class="warning" id="cut-off">Suspending <code>{{id}}</code> cuts off <strong>{{people}}</strong> people: everyone at or below it is denied
            until it is reactivated (their grants are kept).</p>
            <form method="post" action="/console/act">\(hidden)<input type="hidden" name="op" value="org.suspend"><input type="hidden" name="org" value="{{id}}">
            <button class="danger" id="confirm-suspend">Suspend {{people}} people</button> <a href="{{back}}">Cancel</a></form>
            """,
        "people": """
            <h1>People{{#org}} of <a href="{{org_href}}">{{org}}</a>{{/org}}</h1>
            <form method="get" action="/console/people" class="row"><input name="q" id="people-q" value="{{q}}" placeholder="id, name or e-mail starts with…"><button id="people-search">Search</button></form>
            {{#has_suborgs}}<p class="muted">Sub-orgs: {{#suborgs}}<a href="{{href}}">{{id}}</a> {{/suborgs}}</p>{{/has_suborgs}}
            {{#empty}}<p class="muted">Nobody here.</p>{{/empty}}
            <div class="scroll"><table><thead><tr><th>Person</th><th>E-mail</th><th>Org</th><th>Status</th></tr></thead><tbody>
            {{#rows}}<tr><td><a href="{{href}}">{{id}}</a><br><span class="name">{{name}}</span></td><td>{{email}}</td><td>{{org}}</td><td><span class="status {{status}}">{{status}}</span></td></tr>{{/rows}}
            </tbody></table></div>{{#next}}<p><a href="{{next}}" id="next">Next page</a></p>{{/next}}
            """,
        "person": """
            <h1><span id="person-name">{{name}}</span> <span class="status {{status}}" id="person-status">{{status}}</span></h1>
            <p class="muted"><code>{{id}}</code> · {{email}} · <a href="{{org_href}}">{{org}}</a>{{#until}} · until {{until}}{{/until}} · decisions: <code>{{state}}</code></p>
            <div class="actions">
            {{#can_suspend}}<form method="post" action="/console/act">\(hidden)<input type="hidden" name="op" value="user.suspend"><input type="hidden" name="user" value="{{id}}"><button class="danger" id="suspend">Suspend</button></form>{{/can_suspend}}
            {{#can_reactivate}}<form method="post" action="/console/act">\(hidden)<input type="hidden" name="op" value="user.reactivate"><input type="hidden" name="user" value="{{id}}"><button id="reactivate">Reactivate</button></form>{{/can_reactivate}}
            {{#invited}}<form method="post" action="/console/act">\(hidden)<input type="hidden" name="op" value="invitation.resend"><input type="hidden" name="user" value="{{id}}"><button id="resend">New invitation link</button></form>{{/invited}}
            {{#can_remove}}<form method="post" action="/console/act">\(hidden)<input type="hidden" name="op" value="user.remove"><input type="hidden" name="user" value="{{id}}"><input type="hidden" name="back" value="/console/people"><button class="danger" id="remove">Remove</button></form>{{/can_remove}}
            </div>
            <section><h2>Roles</h2>
            <div class="scroll"><table><thead><tr><th>Role</th><th>Scope</th><th>Through</th><th>State</th><th></th></tr></thead><tbody>
            {{#holdings}}<tr><td><code>{{role}}</code><br><small>{{permissions}}</small></td><td>{{scope}}</td><td>{{source}}</td><td>{{state}}{{#holding_until}}<br><small>until {{holding_until}}</small>{{/holding_until}}</td>
            <td>{{#can_revoke}}<form method="post" action="/console/act">\(hidden)<input type="hidden" name="op" value="revoke"><input type="hidden" name="user" value="{{id}}"><input type="hidden" name="role" value="{{role}}"><input type="hidden" name="scope" value="{{scope}}"><button class="link">revoke</button></form>{{/can_revoke}}</td></tr>{{/holdings}}
            </tbody></table></div>
            {{#can_grant}}<form method="post" action="/console/act" class="row" id="grant-form">\(hidden)<input type="hidden" name="op" value="grant"><input type="hidden" name="user" value="{{id}}">
            <label>Give a role <select name="role_scope" id="grant-role">{{#offers}}<option value="{{value}}">{{role}} over {{scope}}</option>{{/offers}}</select></label>
            <button id="grant">Grant</button></form>
            <p class="muted">Only the roles and scopes you may hand out to this person are offered (can_assign); the server decides again.</p>{{/can_grant}}
            {{#cannot_grant}}<p class="muted">There is no role you may hand out to this person.</p>{{/cannot_grant}}
            </section>
            <section><h2>Aliases</h2><ul>{{#aliases}}<li><code>{{alias}}</code>
            <form method="post" action="/console/act" class="inline">\(hidden)<input type="hidden" name="op" value="user.alias.remove"><input type="hidden" name="user" value="{{user}}"><input type="hidden" name="alias" value="{{alias}}"><button class="link">remove</button></form></li>{{/aliases}}</ul>
            {{#can_update}}<form method="post" action="/console/act" class="row">\(hidden)<input type="hidden" name="op" value="user.alias.add"><input type="hidden" name="user" value="{{id}}">
            <input name="alias" placeholder="an IdP subject or login" required><button>Add alias</button></form>{{/can_update}}</section>
            {{> person-usage}}
            <section><h2>Permissions in effect</h2><ul>{{#effective}}<li><code>{{permission}}</code> over {{scope}} <small>via {{via}}</small></li>{{/effective}}</ul></section>
            """,
        "roles": """
            <h1>Roles</h1>
            {{#can_define}}<p><a class="button" id="rollout" href="/console/rollout">Roll out a service…</a> <span class="muted">define a role, entitle partners and grant it, previewed first</span></p>{{/can_define}}
            <div class="scroll"><table><thead><tr><th>Role</th><th>Permissions</th></tr></thead><tbody>
            {{#roles}}<tr><td><code>{{id}}</code><br>{{name}}<br><small>{{description}}</small></td><td><small>{{permissions}}</small>
            {{#can_define}}<details><summary>Update</summary><form method="post" action="/console/act" class="stack">\(hidden)<input type="hidden" name="op" value="role.update"><input type="hidden" name="role" value="{{id}}"><input type="hidden" name="back" value="/console/roles">
            <label>Name <input name="name" value="{{name}}"></label><label>Description <input name="description" value="{{description}}"></label>
            <label>Permissions <textarea name="permissions" rows="2">{{permissions}}</textarea></label><button>Update {{id}}</button></form></details>{{/can_define}}</td></tr>{{/roles}}
            </tbody></table></div>
            {{#can_define}}<section><h2>Define a role</h2><form method="post" action="/console/act" class="stack">\(hidden)<input type="hidden" name="op" value="role.define"><input type="hidden" name="back" value="/console/roles">
            <label>Id <input name="role" id="role-id" required></label><label>Name <input name="name" id="role-name"></label>
            <label>Description <input name="description"></label><label>Permissions (TYPE:ACTION[:owner], separated by spaces) <textarea name="permissions" id="role-permissions" rows="3"></textarea></label>
            <button id="define-role">Define</button></form></section>{{/can_define}}
            """,
        "requests": """
            <h1>Access requests</h1><p class="muted">The pending requests you may approve (can_assign decides each).</p>
            {{#empty}}<p class="muted">None.</p>{{/empty}}
            <ul class="cards">{{#requests}}<li><a href="{{href}}">{{user}}</a> asks for <code>{{role}}</code> over {{scope}} <small>{{created}}</small><br>“{{note}}”
            <form method="post" action="/console/act" class="inline">\(hidden)<input type="hidden" name="op" value="request.approve"><input type="hidden" name="id" value="{{id}}"><input type="hidden" name="back" value="/console/requests"><button id="approve-{{id}}">Approve</button></form>
            <form method="post" action="/console/act" class="inline">\(hidden)<input type="hidden" name="op" value="request.deny"><input type="hidden" name="id" value="{{id}}"><input type="hidden" name="back" value="/console/requests"><button class="danger">Deny</button></form></li>{{/requests}}</ul>
            """,
        "audit": """
            <h1>Audit log</h1>
            <form method="get" action="/console/audit" class="row"><input name="actor" value="{{actor}}" placeholder="actor">
            {{#business}}<input name="partner" value="{{partner}}" placeholder="partner">{{/business}}{{^business}}<span class="muted">partner {{partner}}</span>{{/business}}
            <label class="check"><input type="checkbox" name="refused" value="1"{{#refused}} checked{{/refused}}> refusals only</label><button>Filter</button></form>
            {{#empty}}<p class="muted">No rows.</p>{{/empty}}
            {{> audit-table}}{{#next}}<p><a href="{{next}}">Older</a></p>{{/next}}
            """,
        "me": """
            <h1>My access</h1>
            <p><strong id="me-id">{{id}}</strong> {{name}} · {{email}}<br><span class="muted">{{org_path}} · {{status}} · decisions: <code>{{state}}</code></span></p>
            <section><h2>What I may do, and where it comes from</h2>
            {{^effective}}<p class="muted">Nothing yet.</p>{{/effective}}
            <div class="scroll"><table><thead><tr><th>Permission</th><th>Over</th><th>From</th></tr></thead><tbody>
            {{#effective}}<tr><td><code>{{permission}}</code></td><td>{{scope}}</td><td><small>{{via}}</small></td></tr>{{/effective}}</tbody></table></div>
            <h3>My roles</h3><ul>{{#holdings}}<li><code>{{role}}</code> over {{scope}} — {{source}} ({{state}})</li>{{/holdings}}</ul></section>
            {{#can_request}}<section><h2>Request a role</h2><form method="post" action="/console/act" class="stack">\(hidden)<input type="hidden" name="op" value="request.create">
            <label>Role <select name="role" id="request-role">{{#requestable}}<option>{{id}}</option>{{/requestable}}</select></label>
            <label>Why <input name="note" id="request-note" required></label><button id="request">Request</button></form></section>{{/can_request}}
            <section><h2>My requests</h2>{{^requests}}<p class="muted">None.</p>{{/requests}}<ul>{{#requests}}<li>#{{id}} <code>{{role}}</code> over {{scope}}: {{status}} <small>{{note}}</small></li>{{/requests}}</ul></section>
            """,
        "accept": """
            <h1>Accept an invitation</h1>
            <form method="post" action="/console/accept" class="stack"><input type="hidden" name="csrf" value="{{csrf}}"><input type="hidden" name="token" value="{{token}}">
            {{#fixed}}<p>You are signed in as <code>{{identity}}</code>: that identity is bound to the invited person.</p>{{/fixed}}
            {{^fixed}}<label>Your sign-in identity (an IdP subject or login) <input name="identity" id="accept-identity" required></label>{{/fixed}}
            <button id="accept">Accept</button></form>
            """,
    ]

    /// The consoles' stylesheet: small, no fonts or images, readable from 360 px up.
    static let stylesheet = """
        :root{--fg:#1d2430;--muted:#5b6575;--line:#d8dde5;--bg:#f6f7f9;--accent:#1f5fbf;--bad:#b3261e;--ok:#1e7a3c;--warn:#8a5a00}
        *{box-sizing:border-box}
        body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
        a{color:var(--accent)}
        code{font:13px ui-monospace,SFMono-Regular,Menlo,monospace;background:#eef1f5;padding:0 .25em;border-radius:3px;overflow-wrap:anywhere}
        header.top{display:flex;flex-wrap:wrap;align-items:center;gap:.5rem 1rem;padding:.6rem 1rem;background:#fff;border-bottom:1px solid var(--line)}
        .brand{font-weight:700;text-decoration:none;color:var(--fg)}
        nav{display:flex;flex-wrap:wrap;gap:.25rem .75rem;flex:1}
        nav a{text-decoration:none;padding:.2rem .1rem}
        nav a[aria-current]{font-weight:600;border-bottom:2px solid var(--accent)}
        .who{font-size:.9rem}.who small{color:var(--muted)}
        main{max-width:1100px;margin:0 auto;padding:1rem}
        h1{font-size:1.5rem;margin:.5rem 0}h2{font-size:1.15rem;margin:1.5rem 0 .5rem}
        section{background:#fff;border:1px solid var(--line);border-radius:6px;padding:.25rem 1rem 1rem;margin:1rem 0}
        .muted,small{color:var(--muted)}
        .scroll{overflow-x:auto}
        table{border-collapse:collapse;width:100%;background:#fff}
        th,td{text-align:left;padding:.4rem .5rem;border-bottom:1px solid var(--line);vertical-align:top}
        tr.refused td{background:#fff4f3}
        form.row{display:flex;flex-wrap:wrap;gap:.5rem;align-items:flex-end;margin:.5rem 0}
        form.stack{display:grid;gap:.5rem;max-width:36rem}
        form.inline{display:inline}
        label{display:flex;flex-direction:column;font-size:.85rem;color:var(--muted);gap:.15rem}
        label.check{flex-direction:row;align-items:center;gap:.3rem;color:var(--fg)}
        input,select,textarea{font:inherit;padding:.35rem .5rem;border:1px solid var(--line);border-radius:4px;min-width:0;max-width:100%}
        button,.button{font:inherit;padding:.4rem .8rem;border:1px solid var(--accent);background:var(--accent);color:#fff;border-radius:4px;cursor:pointer;text-decoration:none;display:inline-block}
        button.danger,.button.danger{background:var(--bad);border-color:var(--bad)}
        button.link{background:none;border:none;color:var(--accent);padding:0;text-decoration:underline}
        .actions{display:flex;flex-wrap:wrap;gap:.5rem;align-items:flex-start;margin:.75rem 0}
        fieldset{border:1px solid var(--line);border-radius:4px;display:flex;flex-wrap:wrap;gap:.25rem .75rem}
        .status{font-size:.75rem;padding:.1rem .45rem;border-radius:9px;background:#e6ebf2;vertical-align:middle}
        .status.active{background:#e3f4e8;color:var(--ok)}.status.suspended{background:#fde8e6;color:var(--bad)}
        .status.pending,.status.invited{background:#fff2d6;color:var(--warn)}
        .flash{padding:.6rem .8rem;border-radius:4px;background:#e3f4e8;border:1px solid #b9e0c5;overflow-wrap:anywhere}
        .flash.error{background:#fde8e6;border-color:#f3c1bc}.button.secondary{background:#fff;color:var(--accent)}
        ol.ops li.refused{color:var(--bad)}.phone-only{display:none}p.gain{margin:0 0 .3rem}.scope{white-space:nowrap}h2.inline{display:inline-block}summary{cursor:pointer}
        .problem,.warning{padding:.6rem .8rem;border-radius:4px;background:#fde8e6;border:1px solid #f3c1bc}
        .stats{display:grid;grid-template-columns:repeat(auto-fit,minmax(10rem,1fr));gap:.75rem}
        .stats>*{background:#fff;border:1px solid var(--line);border-radius:6px;padding:.75rem;text-decoration:none;color:var(--fg)}
        .stats b{display:block;font-size:1.6rem}
        ul.cards{list-style:none;padding:0;display:grid;gap:.5rem}
        ul.cards li{background:#fff;border:1px solid var(--line);border-radius:6px;padding:.6rem .8rem}
        .crumbs{margin:0;color:var(--muted);font-size:.9rem}
        @media (max-width:600px){main{padding:.6rem}th,td{padding:.35rem .3rem}h1{font-size:1.25rem}header.top{padding:.5rem .6rem}}
        @media (max-width:600px){table.cards thead{display:none}table.cards tr{display:block;border-bottom:1px solid var(--line);padding:.4rem 0}table.cards td{display:block;border:none;padding:.15rem .3rem}.scope{white-space:normal}.phone-only{display:inline}}
        """
}
