/// The templates of ``Console``'s roll-out, identity-namespace and registration pages
/// (registered with ``ConsoleTemplates``'s; the same rule: every value `{{…}}`, escaped).
enum ConsoleRolloutTemplates {
    static let hidden = ConsoleTemplates.hidden

    static let templates: [String: String] = [
        "rollout": """
            <p class="crumbs"><a href="/console/roles">Roles</a> ›</p>
            <h1>Roll out a service</h1>
            <p class="muted">Define a role, entitle partners to it and grant it at each partner's root, in one transaction.
            Nothing is written until you have seen its preview: who would gain which permissions, partner by partner.</p>
            {{#message}}<p class="problem" id="rollout-problem">{{message}}</p>{{/message}}
            <form method="post" action="/console/rollout/preview" class="stack" id="rollout-form">\(hidden)
            <label>Role id <input name="role" id="rollout-role" value="{{role}}" required></label>
            <label>Name <input name="name" id="rollout-name" value="{{name}}"></label>
            <label>Description <input name="description" id="rollout-description" value="{{description}}"></label>
            <label>Permissions (TYPE:ACTION[:owner], one per line or comma separated)
            <textarea name="permissions" id="rollout-permissions" rows="3" required>{{permissions}}</textarea></label>
            <fieldset><legend>Which partners</legend>
            <label class="check"><input type="radio" name="partners" value="all" id="rollout-all"{{#all}} checked{{/all}}> all {{active}} active partners</label>
            <label class="check"><input type="radio" name="partners" value="chosen" id="rollout-chosen"{{^all}} checked{{/all}}> only these partners:</label>
            <label>Partner ids (one per line or comma separated) <textarea name="chosen" id="rollout-chosen-ids" rows="2">{{chosen}}</textarea></label></fieldset>
            <fieldset><legend>Org grant at each partner's root</legend>
            <input type="hidden" name="org_grant" value="false"><label class="check"><input type="checkbox" name="org_grant" value="true" id="rollout-org-grant"{{#org_grant}} checked{{/org_grant}}> grant it to every member of each partner</label>
            <input type="hidden" name="include_suborgs" value="false"><label class="check"><input type="checkbox" name="include_suborgs" value="true" id="rollout-suborgs"{{#include_suborgs}} checked{{/include_suborgs}}> and of its sub-orgs</label></fieldset>
            <button id="rollout-preview">Preview</button></form>
            """,
        "rollout-preview": """
            <p class="crumbs"><a href="/console/roles">Roles</a> › <a href="/console/rollout">Roll out a service</a> ›</p>
            <h1>Preview: roll out <code>{{role}}</code></h1>
            {{#notice}}<p class="warning" id="notice">{{notice}}</p>{{/notice}}
            <p><strong>{{name}}</strong> · <code>{{permissions_text}}</code> · to {{partner_count}} partner(s){{#all}} (every active partner){{/all}}
            {{#org_grant}} · org-granted at each root{{#include_suborgs}} with its sub-orgs{{/include_suborgs}}{{/org_grant}}</p>
            {{#failed}}<p class="problem" id="preview-refused">A real run would apply nothing: <strong>{{operation}}</strong> on <code>{{target}}</code>
            is <code id="code">{{reason}}</code>: <span id="message">{{message}}</span></p>{{/failed}}
            {{#would_commit}}<section id="what-if"><h2>What it would do</h2>
            <p class="stats-line"><b id="gain-count">{{gain_count}}</b> people would gain access, at <b id="partners-gaining">{{partners_gaining}}</b> partner(s){{#has_lost}}; <b id="lose-count">{{lost_count}}</b> would lose some{{/has_lost}}.
            {{#has_hidden}}<span class="muted">({{hidden}} more you may not view.)</span>{{/has_hidden}}
            <small>Decided at revision {{revision}} in {{seconds}} s, nothing written.</small></p>
            {{#nobody}}<p class="muted">Nobody would gain anything (no org grant, or no active member).</p>{{/nobody}}
            <ul id="gained-totals">{{#totals}}<li><code>{{permission}}</code>: {{count}} people</li>{{/totals}}</ul>
            <div class="scroll"><table id="gains" class="cards"><thead><tr><th>Partner</th><th>People</th><th>Gained: people · over which orgs</th><th>First people</th></tr></thead><tbody>
            {{#rows}}<tr><td><a href="{{href}}">{{partner_name}}</a><br><code>{{partner}}</code></td><td class="count">{{count}}<span class="phone-only"> people</span></td>
            <td>{{#permissions}}<p class="gain"><code>{{permission}}</code> {{count}} · <small>over {{#scopes}}<span class="scope">{{scope}} ({{count}})</span> {{/scopes}}{{#has_more_scopes}}and {{more_scopes}} more orgs{{/has_more_scopes}}</small></p>{{/permissions}}</td>
            <td>{{#first}}<a href="{{href}}">{{id}}</a> {{/first}}{{#has_more}}<small>and {{more}} more</small>{{/has_more}}</td></tr>{{/rows}}
            </tbody></table></div></section>{{/would_commit}}
            <div class="actions">
            {{#would_commit}}<form method="post" action="/console/rollout/commit">\(hidden)<input type="hidden" name="revision" value="{{revision}}">
            {{#carried}}<input type="hidden" name="{{name}}" value="{{value}}">{{/carried}}<button id="rollout-commit">Commit: roll out to {{partner_count}} partner(s)</button></form>{{/would_commit}}
            <a class="button secondary" href="{{change_href}}" id="rollout-change">Change</a> <a href="/console/roles">Cancel</a></div>
            <section><details{{^would_commit}} open{{/would_commit}}><summary><h2 class="inline">The {{operation_count}} operations, in one transaction</h2></summary>
            <ol class="ops" id="operations">{{#operations}}<li{{#bad}} class="refused"{{/bad}}><code>{{operation}}</code> <code>{{target}}</code> <small>{{status}} {{reason}}</small>{{#bad}}<br><small>{{message}}</small>{{/bad}}</li>{{/operations}}</ol></details></section>
            """,
        "org-namespaces": """
            {{#namespaces_shown}}<section id="namespaces"><h2>Identity namespaces</h2>
            <p class="muted">The issuer prefixes and e-mail domains this partner's aliases may use: its admins (and its SCIM token)
            give aliases only inside them. {{^can_edit_namespaces}}The business declares them.{{/can_edit_namespaces}}</p>
            {{#namespaces_empty}}<p class="muted" id="no-namespaces">None declared: the partner's admins may give no alias.</p>{{/namespaces_empty}}
            <ul id="namespace-list">{{#namespaces}}<li><code>{{namespace}}</code>{{#can_edit_namespaces}} <a href="{{remove_href}}" class="remove-namespace">withdraw…</a>{{/can_edit_namespaces}}</li>{{/namespaces}}</ul>
            {{#can_edit_namespaces}}<form method="post" action="{{namespaces_action}}" class="row">\(hidden)<input type="hidden" name="action" value="add">
            <label>New namespace <input name="namespace" id="namespace-new" placeholder="okta-acme| or @acme.example" required></label><button id="namespace-add">Declare</button></form>{{/can_edit_namespaces}}
            </section>{{/namespaces_shown}}
            """,
        "namespace-remove": """
            <h1>Withdraw <code>{{namespace}}</code>?</h1>
            <p class="warning">Partner {{name}} (<code>{{id}}</code>) loses the identity namespace <code>{{namespace}}</code>: its existing aliases
            stay, but its admins and its SCIM token can no longer give new aliases inside it.</p>
            <form method="post" action="{{action}}">\(hidden)<input type="hidden" name="action" value="remove"><input type="hidden" name="namespace" value="{{namespace}}">
            <button class="danger" id="confirm-namespace-remove">Withdraw {{namespace}}</button> <a href="{{back}}">Cancel</a></form>
            """,
        "register": """
            <p class="crumbs"><a href="/console/partners">Partners</a> ›</p>
            <h1>Register a partner</h1>
            <p class="muted">A pending partner under <code>partners</code> and its first administrator, invited: the answer shows the
            invitation link once. Approve the registration (with its entitlements) from the partner's page.</p>
            <form method="post" action="/console/partners/register" class="stack">\(hidden)
            <label>Partner id <input name="org" id="register-org" required></label><label>Name <input name="name" id="register-name"></label>
            <label>First admin's user id <input name="admin" id="register-admin" required></label>
            <label>Admin's name <input name="admin_name" id="register-admin-name"></label>
            <label>Admin's e-mail <input name="admin_email" type="email" id="register-admin-email"></label>
            <button id="register">Register</button></form>
            """,
    ]
}
