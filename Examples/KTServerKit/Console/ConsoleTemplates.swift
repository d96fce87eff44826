import Mustache

/// The console's pages as Mustache templates (`{{x}}` is HTML-escaped; `{{{x}}}` is used only
/// for the page body, which is itself a rendered template). Every page is the `layout` around
/// its body: one `h1` each, labels on every field, every form a POST carrying the CSRF token.
enum ConsoleTemplates {
    static let library: MustacheLibrary = {
        var library = MustacheLibrary()
        for (name, text) in templates {
            // The templates are constants of this file: a parse error is a programming error.
            try! library.register(text, named: name)
        }
        return library
    }()

    static let templates: [String: String] = [
        "layout": layout, "login": login, "graphs": graphs, "new-graph": newGraph, "graph": graph,
        "nodes": nodes, "node": node, "connections": connections, "error": error,
    ]

    static let layout = """
        <!DOCTYPE html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        {{#refresh}}<meta http-equiv="refresh" content="{{refresh}}">{{/refresh}}
        <title>{{title}} · Knowledge Tree</title>
        <link rel="stylesheet" href="/console.css">
        </head>
        <body>
        <a class="skip" href="#main">Skip to content</a>
        <header class="top">
        <a class="brand" href="/graphs">Knowledge Tree</a>
        {{#user}}
        <nav aria-label="Main">
        <a href="/graphs">Graphs</a>
        {{#superuser}}<a href="/database-connections">Databases</a>{{/superuser}}
        </nav>
        <form class="inline" method="post" action="/logout">
        <input type="hidden" name="csrf_token" value="{{csrf}}">
        <span class="who">{{email}}</span> <button type="submit" class="link">Sign out</button>
        </form>
        {{/user}}
        </header>
        <main id="main">
        {{#notice}}<p class="notice" role="status">{{notice}}</p>{{/notice}}
        {{{body}}}
        </main>
        </body>
        </html>
        """

    static let login = """
        <h1>Sign in</h1>
        <form method="post" action="/login" class="card">
        <input type="hidden" name="csrf_token" value="{{csrf}}">
        <div class="field">
        <label for="token">API token</label>
        <input id="token" name="token" type="password" autocomplete="off" required {{#error}}aria-invalid="true" aria-describedby="token-error"{{/error}}>
        {{#error}}<p class="error" id="token-error" role="alert">{{error}}</p>{{/error}}
        </div>
        <button type="submit">Sign in</button>
        </form>
        <p class="hint">Create a token with <code>kt users create --superuser EMAIL</code> or <code>kt users token EMAIL</code>.</p>
        """

    static let graphs = """
        <h1>Graphs</h1>
        <div class="bar">
        <form method="get" action="/graphs" class="inline">
        <label for="database">Database</label>
        <select id="database" name="database">
        <option value="">All databases</option>
        {{#databases}}<option value="{{key}}"{{#selected}} selected{{/selected}}>{{name}}</option>{{/databases}}
        </select>
        <button type="submit">Filter</button>
        </form>
        {{#superuser}}<a class="button" href="/graphs/new">New graph</a>{{/superuser}}
        </div>
        {{#hasGraphs}}
        <table>
        <caption class="visually-hidden">Graphs you can see</caption>
        <thead><tr><th scope="col">Name</th><th scope="col">Slug</th><th scope="col">Status</th><th scope="col">Database</th><th scope="col" class="num">Nodes</th></tr></thead>
        <tbody>
        {{#graphs}}<tr><td><a href="/graphs/{{slug}}">{{name}}</a></td><td><code>{{slug}}</code></td><td><span class="status status-{{status}}">{{status}}</span></td><td>{{database}}</td><td class="num">{{nodeCount}}</td></tr>
        {{/graphs}}
        </tbody>
        </table>
        {{/hasGraphs}}
        {{^hasGraphs}}<p>No graphs{{#filtered}} on this database{{/filtered}}.</p>{{/hasGraphs}}
        """

    static let newGraph = """
        <h1>New graph</h1>
        {{#connectionsError}}<p class="error" role="alert">{{connectionsError}}</p>{{/connectionsError}}
        {{#formError}}<p class="error" role="alert">{{formError}}</p>{{/formError}}
        <form method="post" action="/graphs/new" class="card">
        <input type="hidden" name="csrf_token" value="{{csrf}}">
        <div class="field">
        <label for="slug">Slug</label>
        <input id="slug" name="slug" value="{{slug}}" required aria-describedby="slug-help{{#slugError}} slug-error{{/slugError}}"{{#slugError}} aria-invalid="true"{{/slugError}}>
        <p class="help" id="slug-help">3 to 57 characters: lower-case letters, digits and underscores, starting and ending with a letter or digit.</p>
        {{#slugError}}<p class="error" id="slug-error">{{slugError}}</p>{{/slugError}}
        </div>
        <div class="field">
        <label for="name">Name</label>
        <input id="name" name="name" value="{{name}}" required{{#nameError}} aria-invalid="true" aria-describedby="name-error"{{/nameError}}>
        {{#nameError}}<p class="error" id="name-error">{{nameError}}</p>{{/nameError}}
        </div>
        <div class="field">
        <label for="description">Description</label>
        <textarea id="description" name="description" rows="3">{{description}}</textarea>
        </div>
        <div class="field">
        <label for="database_connection_config_key">Database</label>
        <select id="database_connection_config_key" name="database_connection_config_key"{{#databaseError}} aria-invalid="true" aria-describedby="database-error"{{/databaseError}}>
        {{#databases}}<option value="{{key}}"{{#selected}} selected{{/selected}}>{{name}}</option>{{/databases}}
        </select>
        {{#databaseError}}<p class="error" id="database-error">{{databaseError}}</p>{{/databaseError}}
        </div>
        <button type="submit"{{#connectionsError}} disabled{{/connectionsError}}>Create graph</button>
        </form>
        """

    static let graph = """
        <h1>{{name}}</h1>
        {{#error}}<p class="error" role="alert">{{error}}</p>{{/error}}
        <dl class="facts">
        <dt>Slug</dt><dd><code>{{slug}}</code></dd>
        <dt>Status</dt><dd><span class="status status-{{status}}" id="graph-status">{{status}}</span></dd>
        <dt>Database</dt><dd id="graph-database">Database: {{database}}</dd>
        <dt>Schema</dt><dd><code>{{schema}}</code></dd>
        <dt>Created</dt><dd><time datetime="{{createdISO}}">{{created}}</time></dd>
        <dt>Nodes</dt><dd>{{nodeCount}}</dd>
        {{#description}}<dt>Description</dt><dd>{{description}}</dd>{{/description}}
        </dl>
        {{#active}}<p><a href="/graphs/{{slug}}/nodes">Browse nodes</a></p>{{/active}}
        {{#provisioning}}
        <section aria-labelledby="progress-title">
        <h2 id="progress-title">Provisioning</h2>
        <p>This page refreshes every two seconds until the graph is ready.</p>
        <ol id="provisioning-steps">{{#steps}}<li>{{.}}</li>{{/steps}}</ol>
        </section>
        {{/provisioning}}
        {{#moving}}
        <section aria-labelledby="move-title">
        <h2 id="move-title">Moving to {{moveTarget}}</h2>
        <p>The graph is served from its current database until the switch. This page refreshes every two seconds.</p>
        <ol id="move-steps">{{#steps}}<li>{{.}}</li>{{/steps}}</ol>
        </section>
        {{/moving}}
        {{#moveError}}<p class="error" id="move-error">The last move stopped: {{moveError}}</p>{{/moveError}}
        {{#failed}}
        <section aria-labelledby="failure-title">
        <h2 id="failure-title">Provisioning failed</h2>
        <p class="error" id="failure-reason">{{reason}}</p>
        {{#canRetry}}
        <form method="post" action="/graphs/{{slug}}/retry">
        <input type="hidden" name="csrf_token" value="{{csrf}}">
        <button type="submit">Retry</button>
        </form>
        {{/canRetry}}
        </section>
        {{/failed}}
        {{#schemaError}}<p class="error">Schemas not migrated: {{schemaError}}</p>{{/schemaError}}
        {{#showMembers}}
        <section aria-labelledby="members-title">
        <h2 id="members-title">Members</h2>
        {{#memberError}}<p class="error" role="alert" id="member-error">{{memberError}}</p>{{/memberError}}
        <table>
        <thead><tr><th scope="col">User</th><th scope="col">Role</th>{{#manageMembers}}<th scope="col">Actions</th>{{/manageMembers}}</tr></thead>
        <tbody>
        {{#members}}<tr><td>{{email}}</td><td>{{#manageMembers}}<form method="post" action="/graphs/{{slug}}/members/{{userID}}/role" class="inline">
        <input type="hidden" name="csrf_token" value="{{csrf}}">
        <label class="visually-hidden" for="role-{{userID}}">Role of {{email}}</label>
        <select id="role-{{userID}}" name="role">{{#roles}}<option value="{{value}}"{{#selected}} selected{{/selected}}>{{value}}</option>{{/roles}}</select>
        <button type="submit">Change</button></form>{{/manageMembers}}{{^manageMembers}}{{role}}{{/manageMembers}}</td>
        {{#manageMembers}}<td><form method="post" action="/graphs/{{slug}}/members/{{userID}}/remove" class="inline">
        <input type="hidden" name="csrf_token" value="{{csrf}}">
        <button type="submit" class="danger" aria-label="Remove {{email}}">Remove</button></form></td>{{/manageMembers}}</tr>
        {{/members}}
        </tbody>
        </table>
        {{#manageMembers}}
        <form method="post" action="/graphs/{{slug}}/members" class="card">
        <input type="hidden" name="csrf_token" value="{{csrf}}">
        <div class="field">
        <label for="member">E-mail or user id</label>
        <input id="member" name="user" required>
        </div>
        <div class="field">
        <label for="member-role">Role</label>
        <select id="member-role" name="role"><option value="reader">reader</option><option value="writer">writer</option><option value="admin">admin</option></select>
        </div>
        <button type="submit">Add member</button>
        </form>
        {{/manageMembers}}
        </section>
        {{/showMembers}}
        {{#canDelete}}
        <section aria-labelledby="delete-title">
        <h2 id="delete-title">Delete</h2>
        <form method="post" action="/graphs/{{slug}}/delete" class="card">
        <input type="hidden" name="csrf_token" value="{{csrf}}">
        <p>A deleted graph keeps its data and its slug.</p>
        <button type="submit" class="danger">Delete graph</button>
        </form>
        <form method="post" action="/graphs/{{slug}}/delete" class="card">
        <input type="hidden" name="csrf_token" value="{{csrf}}">
        <input type="hidden" name="hard" value="1">
        <p>Deleting permanently drops the graph's schemas and collections and frees its slug.</p>
        <div class="field">
        <label for="confirm">Type the slug <code>{{slug}}</code> to confirm</label>
        <input id="confirm" name="confirm" autocomplete="off" required>
        </div>
        <button type="submit" class="danger">Delete permanently</button>
        </form>
        </section>
        {{/canDelete}}
        """

    static let nodes = """
        <h1>Nodes of {{graphName}}</h1>
        <p><a href="/graphs/{{slug}}">Back to the graph</a></p>
        <form method="get" action="/graphs/{{slug}}/nodes" class="inline bar">
        <label for="search">Search</label>
        <input id="search" name="search" type="search" value="{{search}}">
        <button type="submit">Search</button>
        </form>
        {{#hasNodes}}
        <table>
        <caption class="visually-hidden">Nodes</caption>
        <thead><tr><th scope="col">Concept</th><th scope="col">Type</th><th scope="col" class="num">Facts</th><th scope="col" class="num">Edges</th><th scope="col" class="num">Children</th></tr></thead>
        <tbody>
        {{#nodes}}<tr><td><a href="/graphs/{{slug}}/nodes/{{id}}">{{concept}}</a></td><td>{{type}}</td><td class="num">{{facts}}</td><td class="num">{{edges}}</td><td class="num">{{children}}</td></tr>
        {{/nodes}}
        </tbody>
        </table>
        {{/hasNodes}}
        {{^hasNodes}}<p>No nodes{{#search}} match “{{search}}”{{/search}}.</p>{{/hasNodes}}
        <nav aria-label="Pages" class="pages">
        <span>{{range}} of {{total}}</span>
        {{#previous}}<a href="{{previous}}" rel="prev">Previous page</a>{{/previous}}
        {{#next}}<a href="{{next}}" rel="next">Next page</a>{{/next}}
        </nav>
        """

    static let node = """
        <h1>{{concept}}</h1>
        <p><a href="/graphs/{{slug}}/nodes">All nodes</a>{{#parent}} · <a href="/graphs/{{slug}}/nodes/{{parent}}">Parent</a>{{/parent}}</p>
        <dl class="facts">
        <dt>Type</dt><dd>{{type}}</dd>
        {{#definition}}<dt>Definition</dt><dd>{{definition}}</dd>{{/definition}}
        <dt>Updated</dt><dd>{{updated}}</dd>
        </dl>
        <section aria-labelledby="facts-title">
        <h2 id="facts-title">Facts ({{factCount}})</h2>
        {{#has_facts}}<ul>{{#facts}}<li>{{content}} <span class="muted">({{type}})</span></li>{{/facts}}</ul>{{/has_facts}}
        {{^facts}}<p>No facts.</p>{{/facts}}
        </section>
        <section aria-labelledby="edges-title">
        <h2 id="edges-title">Edges ({{edgeCount}})</h2>
        {{#has_edges}}<ul>{{#edges}}<li>{{relationship}} <a href="/graphs/{{slug}}/nodes/{{other}}">{{otherConcept}}</a> <span class="muted">(weight {{weight}})</span></li>{{/edges}}</ul>{{/has_edges}}
        {{^edges}}<p>No edges.</p>{{/edges}}
        </section>
        <section aria-labelledby="children-title">
        <h2 id="children-title">Children ({{childCount}})</h2>
        {{#has_children}}<ul>{{#children}}<li><a href="/graphs/{{slug}}/nodes/{{id}}">{{concept}}</a></li>{{/children}}</ul>{{/has_children}}
        {{^children}}<p>No children.</p>{{/children}}
        </section>
        """

    static let connections = """
        <h1>Databases</h1>
        <p>Graphs are created in one of these database pairs. <code>default</code> is the system pair.</p>
        {{#error}}<p class="error" role="alert">{{error}}</p>{{/error}}
        <table>
        <thead><tr><th scope="col">Name</th><th scope="col">Config key</th><th scope="col">Added</th></tr></thead>
        <tbody>
        {{#connections}}<tr><td>{{name}}</td><td><code>{{key}}</code></td><td>{{created}}</td></tr>
        {{/connections}}
        </tbody>
        </table>
        <h2>Add a database</h2>
        <form method="post" action="/database-connections" class="card">
        <input type="hidden" name="csrf_token" value="{{csrf}}">
        <div class="field">
        <label for="conn-name">Name</label>
        <input id="conn-name" name="name" value="{{name}}" required>
        </div>
        <div class="field">
        <label for="conn-key">Config key</label>
        <input id="conn-key" name="config_key" value="{{configKey}}" required aria-describedby="conn-key-help">
        <p class="help" id="conn-key-help">A key of <code>GRAPH_DATABASES</code> (or <code>EXTRA_DB_&lt;KEY&gt;_*</code>) in this server's settings.</p>
        </div>
        <button type="submit">Add database</button>
        </form>
        """

    static let error = """
        <h1>{{heading}}</h1>
        <p class="error">{{detail}}</p>
        <p><a href="/graphs">Back to the graphs</a></p>
        """

    static let stylesheet = """
        :root { --fg: #1b1f24; --muted: #4a5360; --accent: #0b5cad; --bg: #ffffff; --panel: #f3f5f8; --line: #c9d1db; --bad: #a4161a; --ok: #1e6b34; }
        * { box-sizing: border-box; }
        body { margin: 0; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg); }
        a { color: var(--accent); }
        a:focus, button:focus, input:focus, select:focus, textarea:focus { outline: 3px solid #f4b400; outline-offset: 1px; }
        .skip { position: absolute; left: -999px; } .skip:focus { left: 8px; top: 8px; background: #fff; padding: 4px 8px; }
        .top { display: flex; gap: 24px; align-items: center; padding: 10px 24px; background: #12263f; color: #fff; }
        .top a, .top .who { color: #fff; } .top nav { display: flex; gap: 16px; flex: 1; } .brand { font-weight: 700; text-decoration: none; }
        .top .link { background: none; border: 1px solid #fff; color: #fff; padding: 2px 10px; }
        main { max-width: 1120px; margin: 0 auto; padding: 16px 24px 48px; }
        h1 { font-size: 1.7rem; margin: 8px 0 16px; } h2 { font-size: 1.25rem; margin-top: 28px; }
        table { width: 100%; border-collapse: collapse; margin: 12px 0; }
        th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }
        thead th { background: var(--panel); } .num { text-align: right; }
        .card { background: var(--panel); border: 1px solid var(--line); border-radius: 6px; padding: 16px; margin: 12px 0; max-width: 640px; }
        .field { margin-bottom: 12px; } .field label { display: block; font-weight: 600; margin-bottom: 4px; }
        input, select, textarea { font: inherit; padding: 6px 8px; border: 1px solid #6b7685; border-radius: 4px; max-width: 100%; }
        .field input, .field textarea, .field select { width: 100%; }
        button, .button { font: inherit; display: inline-block; padding: 6px 14px; border-radius: 4px; border: 1px solid var(--accent); background: var(--accent); color: #fff; text-decoration: none; cursor: pointer; }
        button[disabled] { background: #6b7685; border-color: #6b7685; cursor: not-allowed; }
        button.danger { background: var(--bad); border-color: var(--bad); }
        .inline { display: inline-flex; gap: 8px; align-items: center; margin: 0; }
        .bar { display: flex; gap: 16px; align-items: center; justify-content: space-between; margin: 8px 0; }
        .error { color: var(--bad); font-weight: 600; } .notice { background: #e6f4ea; color: var(--ok); padding: 8px 12px; border-radius: 4px; }
        .help, .hint, .muted { color: var(--muted); font-size: 0.92rem; margin: 4px 0; }
        .status { padding: 1px 8px; border-radius: 10px; background: var(--panel); border: 1px solid var(--line); }
        .status-active { color: var(--ok); } .status-error { color: var(--bad); }
        dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; } dl.facts dt { font-weight: 600; } dl.facts dd { margin: 0; }
        .pages { display: flex; gap: 16px; margin-top: 12px; }
        .visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
        code { background: var(--panel); padding: 0 4px; border-radius: 3px; }
        """
}
