// Package schema embeds the JSON Schema of the tasksync/v1 definition
// format, so that the binary validates with exactly the schema it prints.
package schema

import _ "embed"

// Definition is the JSON Schema (draft 2020-12) of one tasksync/v1
// definition document, as published in tasksync.schema.json.
//
//go:embed tasksync.schema.json
var Definition []byte

// ID is the schema's $id.
const ID = "https://github.com/riveredge/tasksync/schema/tasksync.schema.json"
