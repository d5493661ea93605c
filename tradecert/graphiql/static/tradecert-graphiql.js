// tradecert's GraphiQL page: the vendored GraphiQL and its explorer, on this server's GraphQL
// endpoint. A served file rather than an inline script, so that the page's
// Content-Security-Policy allows scripts from this origin only ('self', no 'unsafe-inline').
(function () {
  "use strict";

  var root = document.getElementById("graphiql");

  // GraphiQL's dialogs (Radix, through react-remove-scroll) add one <style> element and give it
  // the nonce found in this global (webpack's name for it); the page's style-src allows that
  // nonce, so inline styles in general stay refused.
  window.__webpack_nonce__ = root.dataset.styleNonce;

  // The headers tab starts with this placeholder. Sent as it is, it would stand for no session
  // and hide the session cookie a login from this page sets, so the fetcher leaves it out.
  var TOKEN_PLACEHOLDER = "Bearer <token>";
  var DEFAULT_HEADERS = JSON.stringify({ Authorization: TOKEN_PLACEHOLDER }, null, 2);

  var DEFAULT_QUERY = [
    "# tradecert GraphiQL: run with Ctrl-Enter (Cmd-Enter) or the run button.",
    "#",
    "# To act as an account: run the login mutation, then replace <token> in the",
    "# Headers tab below with the token it returns:",
    "#   mutation { login(input: {chamberCode: \"…\", username: \"…\", password: \"…\"}) { token } }",
    "",
    "{",
    "  feeSchedule {",
    "    on",
    "    rulesVersion",
    "  }",
    "}",
    "",
  ].join("\n");

  // The page is served at the GraphQL endpoint itself (GET with Accept: text/html).
  var graphqlFetcher = GraphiQL.createFetcher({ url: window.location.pathname });

  function fetcher(params, options) {
    var headers = {};
    var given = (options && options.headers) || {};
    Object.keys(given).forEach(function (name) {
      if (!(name.toLowerCase() === "authorization" && given[name] === TOKEN_PLACEHOLDER)) {
        headers[name] = given[name];
      }
    });
    return graphqlFetcher(params, Object.assign({}, options, { headers: headers }));
  }

  var explorer = GraphiQLPluginExplorer.explorerPlugin();

  ReactDOM.createRoot(root).render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      plugins: [explorer],
      defaultQuery: DEFAULT_QUERY,
      defaultHeaders: DEFAULT_HEADERS,
      defaultEditorToolsVisibility: "headers",
      isHeadersEditorEnabled: true,
      // The token stays in this tab's memory, not in localStorage where any script of this
      // origin could read it later; the HttpOnly session cookie of a login survives a reload.
      shouldPersistHeaders: false,
      inputValueDeprecation: true,
    }),
  );
})();
