// Runs graphql-http's auditServer against the URL given and prints the results as JSON
// (one object per audit: id, status ok|warn|error|notice, name, reason).
import { auditServer } from 'graphql-http';

const url = process.argv[2];
const results = await auditServer({ url });
console.log(JSON.stringify(results.map(({ id, status, name, reason }) => ({ id, status, name, reason: reason ?? null }))));
