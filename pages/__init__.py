"""The HTML pages people open from a link or a browser, an edge beside schema/ (GraphQL):
/activate and /verify, the public fee schedule /fees, the sandbox gateway's hosted card page
and the development mail box /dev/mail. tradecert/app.py mounts them; they call the use
cases of resolvers/ and read rules/, and neither schema/ nor resolvers/ imports them
(tests/architecture/test_imports.py)."""
