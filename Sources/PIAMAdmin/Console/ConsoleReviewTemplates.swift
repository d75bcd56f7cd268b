// The templates of the access-review and usage pages (ConsoleReviews.swift, ConsoleUsage.swift),
// registered with the others in ``ConsoleTemplates/library``. Every value is inserted with
// `{{…}}` (HTML-escaped); every state-changing form carries the CSRF token (`hidden`).
extension ConsoleTemplates {
    static let reviewTemplates: [String: String] = [
        "reviews": """
            <h1>Access reviews</h1>
            <p class="muted">Each partner's admins confirm or revoke who holds what; the business answers where no partner admin may.
            Campaigns: {{total}}.</p>
            {{#empty}}<p class="muted" id="no-reviews">No campaign yet.</p>{{/empty}}
            <div class="scroll"><table id="reviews"><thead><tr><th>Campaign</th><th>Status</th><th>Due</th><th>Completion</th><th>Your tasks</th></tr></thead><tbody>
            {{#rows}}<tr><td><a href="{{href}}" id="review-{{id}}">{{name}}</a><br><small>{{scope}} · no answer: {{no_answer}}</small></td>
            <td><span class="status {{status}}">{{status}}</span></td><td>{{due}}{{#overdue}}<br><small class="late">overdue</small>{{/overdue}}</td>
            <td><progress max="100" value="{{percent}}"></progress> {{percent}}%<br><small>{{decided}} of {{items}} answered</small></td>
            <td>{{#has_asked}}<a href="{{tasks_href}}?pending=1" id="tasks-{{id}}"><strong>{{asked}}</strong> to answer</a>{{/has_asked}}{{^has_asked}}<a href="{{tasks_href}}">items</a>{{/has_asked}}</td></tr>{{/rows}}
            </tbody></table></div>{{#next}}<p><a href="{{next}}">Next page</a></p>{{/next}}
            {{#business}}<section><h2>Start a campaign</h2>
            <form method="post" action="/console/reviews" class="stack" id="review-form">\(hidden)
            <label>Name <input name="name" id="review-name" required maxlength="200" placeholder="Q3 partner access review"></label>
            <fieldset id="review-scope"><legend>Scope: whose assignments are reviewed</legend>
            <label class="check"><input type="radio" name="scope" value="all_partners" id="scope-all" checked> all partners</label><span></span>
            <label class="check"><input type="radio" name="scope" value="partner" id="scope-partner"> one partner</label>
            <select name="partner" id="review-partner" aria-label="partner"><option value="">—</option>{{#partners}}<option value="{{id}}">{{name}} ({{id}})</option>{{/partners}}</select>
            <label class="check"><input type="radio" name="scope" value="role" id="scope-role"> one role</label>
            <select name="role" id="review-role" aria-label="role"><option value="">—</option>{{#roles}}<option>{{id}}</option>{{/roles}}</select></fieldset>
            <label>Due <input type="date" name="due" id="review-due" value="{{default_due}}" required></label>
            <label>Recommend revoking what was unused for (days) <input type="number" name="days" id="review-days" value="90" min="0" max="36500"></label>
            <fieldset><legend>Items nobody answered, at close</legend>
            <label class="check"><input type="radio" name="no_answer" value="keep" id="no-answer-keep" checked> keep</label>
            <label class="check"><input type="radio" name="no_answer" value="revoke" id="no-answer-revoke"> revoke</label>
            <label class="check"><input type="radio" name="no_answer" value="recommendation" id="no-answer-recommendation"> follow the recommendation</label></fieldset>
            <p class="muted">When closing revokes anything, it first shows how many and asks you to confirm that number.</p>
            <button id="create-review">Start the campaign</button></form></section>{{/business}}
            """,
        "review": """
            <p class="crumbs"><a href="/console/reviews">Access reviews</a> ›</p>
            <h1>{{name}} <span class="status {{status}}" id="review-status">{{status}}</span></h1>
            <p class="muted">#{{id}} · {{scope}} · due {{due}} · recommend revoking what was unused for {{days}} days · no answer at close: {{no_answer}}<br>
            frozen at revision {{revision}} by {{created_by}}, {{created_at}}{{#closed}} · closed {{closed}}{{/closed}}</p>
            <div class="stats"><span><b id="completion">{{percent}}%</b> answered: {{decided}} of {{items}}</span><a href="{{tasks_href}}" id="my-tasks"><b>→</b> Review tasks</a></div>
            <section><h2>Completion per partner</h2>
            {{#empty}}<p class="muted">No items.</p>{{/empty}}
            <div class="scroll"><table id="progress"><thead><tr><th>Partner</th><th>Answered</th><th>Kept</th><th>Revoked</th><th>Recommended to revoke</th></tr></thead><tbody>
            {{#partners}}<tr><td>{{#linked}}<a href="{{href}}">{{partner}}</a>{{/linked}}{{^linked}}{{partner}}{{/linked}}</td>
            <td><progress max="100" value="{{percent}}"></progress> {{percent}}%<br><small>{{decided}} of {{items}}</small></td><td>{{kept}}</td><td>{{revoked}}</td><td>{{recommended}}</td></tr>{{/partners}}
            </tbody></table></div></section>
            {{#can_close}}<section><h2>Close</h2>
            {{#close_revokes}}<p class="warning" id="close-warning">Closing now revokes <strong>{{revocations}}</strong> unanswered items (no answer: {{no_answer}}).</p>
            <p><a class="button danger" id="close" href="{{close_href}}">Close…</a></p>{{/close_revokes}}
            {{^close_revokes}}<p>Closing now keeps every unanswered item.</p>
            <form method="post" action="{{close_href}}">\(hidden)<button id="close">Close the campaign</button></form>{{/close_revokes}}
            </section>{{/can_close}}
            """,
        "review-close": """
            <h1>Close {{name}}?</h1>
            {{#revokes}}<p class="warning" id="close-count">Closing revokes <strong>{{count}}</strong> unanswered items (no answer: {{no_answer}}).
            Each is the revoke operation, by you: decided by the engine and audited like any.</p>
            <div class="scroll"><table><thead><tr><th>Person</th><th>Role</th><th>Partner</th><th>Last use</th></tr></thead><tbody>
            {{#rows}}<tr><td><a href="{{href}}">{{user}}</a></td><td><code>{{role}}</code> over {{scope}}</td><td>{{partner}}</td><td>{{last_use}}</td></tr>{{/rows}}
            </tbody></table></div>{{#has_more}}<p class="muted">… and {{more}} more.</p>{{/has_more}}
            <form method="post" action="/console/reviews/{{id}}/close">\(hidden)<input type="hidden" name="confirm_revocations" value="{{count}}">
            <button class="danger" id="confirm-close">Revoke {{count}} and close</button> <a href="{{back}}">Cancel</a></form>{{/revokes}}
            {{^revokes}}<p id="close-count">Closing now revokes nothing: every unanswered item is kept.</p>
            <form method="post" action="/console/reviews/{{id}}/close">\(hidden)<button id="confirm-close">Close</button> <a href="{{back}}">Cancel</a></form>{{/revokes}}
            """,
        "review-items": """
            <p class="crumbs"><a href="/console/reviews">Access reviews</a> › <a href="{{campaign_href}}">{{name}}</a> ›</p>
            <h1>Review tasks</h1>
            <p class="muted">{{name}} · <span class="status {{status}}">{{status}}</span> · due {{due}}. Keep or revoke each holding, with a comment;
            a revocation is the revoke operation, decided by the engine and audited. What was unused for {{days}} days is recommended for revocation.</p>
            {{^usage_known}}<p class="muted" id="usage-off">No usage files are configured (usage.paths): last use is not recorded.</p>{{/usage_known}}
            <p>{{^all}}<strong>Asked of you</strong> · <a href="{{all_href}}">Everything you may decide</a>{{/all}}{{#all}}<a href="{{asked_href}}">Asked of you</a> · <strong>Everything you may decide</strong>{{/all}}
            · {{#pending}}<strong>unanswered only</strong>{{/pending}}{{^pending}}<a href="{{pending_href}}">unanswered only</a>{{/pending}} · <span id="item-count">{{count}}</span> items</p>
            {{#empty}}<p class="muted" id="no-items">Nothing here.</p>{{/empty}}
            <ul class="cards" id="items">{{#rows}}<li id="item-{{item}}"><a href="{{href}}">{{user}}</a> <small>{{org}}</small> holds <code>{{role}}</code> over {{scope}}
            <small>{{granted}} {{granted_at}}</small><br>Last use: <span class="last-use">{{last_use}}</span> · recommendation:
            <strong class="rec {{recommendation}}">{{recommendation}}</strong>
            {{#decided}}<br><span class="answer">Answered <strong>{{decision}}</strong> by {{decided_by}}{{#comment}}: “{{comment}}”{{/comment}} → {{outcome}}</span>{{/decided}}
            {{#closed_outcome}}<br><span class="answer">Unanswered at close → {{closed_outcome}}</span>{{/closed_outcome}}
            {{#undecided}}<form method="post" action="{{action}}" class="row">\(hidden)<label>Comment <input name="comment" id="comment-{{item}}" maxlength="1000"></label>
            <button name="decision" value="keep" id="keep-{{item}}">Keep</button><button name="decision" value="revoke" class="danger" id="revoke-{{item}}">Revoke</button></form>{{/undecided}}</li>{{/rows}}</ul>
            {{#next}}<p><a href="{{next}}">Next page</a></p>{{/next}}
            """,
        "usage-tiles": """
            {{#usage_known}}<div class="stats" id="usage-tiles"><span><b id="active-30">{{active30}}</b> people active over 30 days</span>
            {{#counted}}<a href="{{dormant_people_href}}"><b id="dormant-people">{{dormant_people}}</b> dormant people</a>
            <a href="{{dormant_holdings_href}}"><b id="dormant-holdings">{{dormant_holdings}}</b> dormant holdings</a>{{/counted}}
            {{^counted}}<a href="{{dormant_href}}" id="dormant-link"><b>Dormant access</b> listed on its page</a>{{/counted}}</div>
            <p class="muted">Dormant: no allowed decision for {{days}} days.{{^counted}} Not counted here on a graph of {{people}} people
            (console.dormant_tiles_max_people): counting scans everyone.{{/counted}}</p>{{/usage_known}}
            {{^usage_known}}<p class="muted" id="usage-off">{{usage_off}}</p>{{/usage_known}}
            """,
        "org-usage": """
            {{#partner_usage}}<section id="usage"><h2>Usage</h2>{{> usage-tiles}}
            {{#usage_known}}<h3>People by status</h3><p id="by-status">{{#by_status}}<span class="status {{status}}">{{count}} {{status}}</span> {{/by_status}}</p>
            <h3>Active people</h3><div class="scroll"><table id="active"><thead><tr>{{#active}}<th>over {{window}}</th>{{/active}}</tr></thead>
            <tbody><tr>{{#active}}<td id="active-{{key}}">{{count}}</td>{{/active}}</tr></tbody></table></div>
            <h3>Most used features</h3>{{#no_features}}<p class="muted">None recorded.</p>{{/no_features}}
            <div class="scroll"><table id="features"><thead><tr><th>Feature</th><th>People</th><th>Allowed</th><th>Denied</th><th>Last allowed</th></tr></thead><tbody>
            {{#features}}<tr><td><code>{{feature}}</code></td><td>{{people}}</td><td>{{allowed}}</td><td>{{denied}}</td><td>{{last}}</td></tr>{{/features}}
            </tbody></table></div>{{/usage_known}}</section>{{/partner_usage}}
            """,
        "person-usage": """
            {{#person_usage}}<section id="usage"><h2>Usage</h2>
            {{^usage_known}}<p class="muted" id="usage-off">{{usage_off}}</p>{{/usage_known}}
            {{#usage_known}}<p>Last activity: <strong id="last-activity">{{last_activity}}</strong></p>
            <div class="scroll"><table id="holding-use"><thead><tr><th>Role</th><th>Through</th><th>State</th><th>Decisions allowed</th><th>Last use</th></tr></thead><tbody>
            {{#holding_use}}<tr><td><code>{{role}}</code> over {{scope}}</td><td>{{what}}</td><td>{{state}}</td><td>{{uses}}</td><td>{{last_used}}</td></tr>{{/holding_use}}
            </tbody></table></div>{{/usage_known}}</section>{{/person_usage}}
            """,
        "dormant": """
            <h1>Dormant access</h1>
            <p class="muted">Access that should no longer exist and that you may remove. Each button performs the operation that removes it
            (the server decides it again and audits it). Dormant: no allowed decision for {{days}} days.</p>
            {{^usage_known}}<p class="warning" id="usage-off">{{usage_off}} Dormant people and holdings are not listed; invitations never accepted
            and people past valid_until are.</p>{{/usage_known}}
            <div class="stats">{{#counts}}<a href="{{href}}"{{#current}} aria-current="page"{{/current}}>{{#judged}}<b id="count-{{kind}}">{{count}}</b>{{/judged}}{{^judged}}<b>–</b>{{/judged}} {{title}}</a>{{/counts}}</div>
            <form method="get" action="/console/dormant" class="row"><input type="hidden" name="kind" value="{{kind}}">
            <label>Partner <input name="partner" value="{{partner}}" placeholder="any"></label><label>Days <input type="number" name="days" value="{{days}}" min="0" max="36500"></label>
            <button>Filter</button> <a href="{{all_href}}">Everything</a></form>
            <p class="muted"><span id="finding-count">{{total}}</span> findings.</p>
            {{#empty}}<p class="muted" id="no-findings">None.</p>{{/empty}}
            <div class="scroll"><table id="findings"><thead><tr><th>Finding</th><th>Who, what</th><th>Last use</th><th>Remove it</th></tr></thead><tbody>
            {{#rows}}<tr><td>{{kind}}<br><small>{{partner}}</small></td>
            <td>{{#user}}<a href="{{user_href}}">{{user}}</a>{{/user}}{{^user}}<a href="{{org_href}}">{{org}}</a>{{/user}}{{#holding}}<br><code>{{holding}}</code>{{/holding}}
            <br><small>{{message}}</small>{{#granted}}<br><small>{{granted}}</small>{{/granted}}</td><td>{{last_use}}</td>
            <td><form method="post" action="/console/act">\(hidden)<input type="hidden" name="op" value="{{op}}">{{#fields}}<input type="hidden" name="{{name}}" value="{{value}}">{{/fields}}
            <button{{#danger}} class="danger"{{/danger}}>{{button}}</button></form></td></tr>{{/rows}}
            </tbody></table></div>{{#next}}<p><a href="{{next}}">Next page</a></p>{{/next}}
            """,
    ]

    /// The review and usage pages' few styles, served after the main stylesheet.
    static let reviewStylesheet = """
        progress{width:6rem;height:.7rem;vertical-align:middle}
        #review-form fieldset{min-width:0}#review-form select{width:100%;min-width:0}
        #review-scope{display:grid;grid-template-columns:auto minmax(0,1fr);gap:.4rem .75rem;align-items:center}
        .late,.rec.revoke{color:var(--bad)}.rec.keep{color:var(--ok)}
        .answer{color:var(--muted)}
        .stats a[aria-current]{border-color:var(--accent);box-shadow:inset 0 -3px 0 var(--accent)}
        """
}
