#!/usr/bin/env node
// Validates AsyncAPI manifests with the official parser (@asyncapi/parser,
// pinned in package.json; offline once installed). Usage:
//
//   node contracts/validate-asyncapi.cjs contracts/asyncapi/*.yaml
//
// Prints one line per error or warning (every diagnostic with ASYNCAPI_VERBOSE=1)
// and "ok <file>" per valid document. Exits 1
// when a document has an error or a warning (the generated manifests are
// expected to have neither), 2 on bad usage.
'use strict';

const fs = require('fs');
const { Parser, DiagnosticSeverity } = require('@asyncapi/parser');

async function main(files) {
  if (files.length === 0) {
    console.error('usage: validate-asyncapi.cjs FILE...');
    return 2;
  }
  const parser = new Parser();
  let failed = false;
  for (const file of files) {
    const source = fs.readFileSync(file, 'utf8');
    const { document, diagnostics } = await parser.parse(source, { source: file });
    const serious = diagnostics.filter(
      (d) => d.severity === DiagnosticSeverity.Error || d.severity === DiagnosticSeverity.Warning,
    );
    // Errors and warnings fail; information and hints (such as "AsyncAPI 3.1.0 exists")
    // are printed only with ASYNCAPI_VERBOSE=1.
    const shown = process.env.ASYNCAPI_VERBOSE === '1' ? diagnostics : serious;
    for (const d of shown) {
      const level = ['error', 'warning', 'info', 'hint'][d.severity] || String(d.severity);
      const where = d.path && d.path.length ? d.path.join('.') : '(document)';
      console.log(`${level} ${file} ${where}: ${d.message} [${d.code}]`);
    }
    if (!document || serious.length > 0) {
      failed = true;
      continue;
    }
    console.log(`ok ${file}: AsyncAPI ${document.version()}, ${document.channels().length} channels, ${document.allMessages().length} messages`);
  }
  return failed ? 1 : 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    console.error(err && err.stack ? err.stack : err);
    process.exit(1);
  },
);
