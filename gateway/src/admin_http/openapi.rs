//! The OpenAPI 3.0 document of the HTTP face, derived from the service
//! descriptor: one POST path per method, and a schema per message and enum
//! in the proto3 JSON mapping, described by the `.proto` comments.

use std::collections::HashMap;

use prost_reflect::{
    DescriptorPool, EnumDescriptor, FieldDescriptor, Kind, MessageDescriptor, ServiceDescriptor,
};
use prost_types::FileDescriptorProto;
use serde_json::{Map, Value, json};

use crate::error::GrpcCode;

/// The schema name of the error body.
pub(super) const ERROR_SCHEMA: &str = "AdminHttpError";
/// The header that carries a simulation session id to the admin service.
const SESSION_HEADER: &str = "x-shep-session";

/// The document for `service`, its paths under `prefix`.
pub(super) fn document(service: &ServiceDescriptor, prefix: &str) -> Value {
    let comments = Comments::new(service.parent_pool());
    let mut schemas = Schemas::default();
    let mut paths = Map::new();
    for method in service.methods() {
        let description = comments.of(&method.parent_file(), method.path());
        let streaming = method.is_client_streaming() || method.is_server_streaming();
        let mut operation = json!({
            "operationId": method.name(),
            "tags": [service.name()],
            "summary": summary(description.as_deref().unwrap_or(method.name())),
            "parameters": [{"$ref": "#/components/parameters/Session"}],
        });
        if let Some(description) = &description {
            operation["description"] = json!(description);
        }
        if streaming {
            operation["description"] = json!(format!(
                "{}\n\nA streaming RPC: not available over HTTP (501, \
                 `STREAMING_NOT_SUPPORTED_OVER_HTTP`); call `{}` over gRPC.",
                description.as_deref().unwrap_or_default(),
                method.full_name()
            ));
            operation["responses"] = json!({"501": {"$ref": "#/components/responses/Error"}});
        } else {
            operation["requestBody"] = json!({
                "required": false,
                "description": format!(
                    "`{}` in the proto3 JSON mapping; an empty body is the empty message.",
                    method.input().full_name()
                ),
                "content": {"application/json": {"schema": schemas.message(&method.input())}},
            });
            operation["responses"] = json!({
                "200": {
                    "description": format!(
                        "`{}`, every field present (defaults included).",
                        method.output().full_name()
                    ),
                    "content": {"application/json": {"schema": schemas.message(&method.output())}},
                },
                "default": {"$ref": "#/components/responses/Error"},
            });
        }
        paths.insert(
            format!("{prefix}/{}", method.name()),
            json!({ "post": operation }),
        );
    }
    let mut components = schemas.finish(&comments);
    components.insert(ERROR_SCHEMA.to_owned(), error_schema());

    let service_comment = comments.of(&service.parent_file(), service.path());
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "shep-sim Admin API",
            "version": service.package_name(),
            "description": format!(
                "`{}` as JSON over HTTP. Each method is `POST {prefix}/<Method>` with the \
                 request message as JSON (proto3 JSON mapping: 64-bit integers as strings, \
                 enums by name, bytes as base64) and answers the response message. Errors \
                 carry the gRPC code's name, the HTTP status, the message and the stable \
                 `reason` of the gateway's `google.rpc.ErrorInfo`.{}",
                service.full_name(),
                service_comment.map(|text| format!("\n\n{text}")).unwrap_or_default(),
            ),
        },
        "tags": [{"name": service.name(), "description": format!("`{}`", service.full_name())}],
        "security": [{"bearerAuth": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "The gateway's admin token: `admin.token`, \
                        `SHEP_ADMIN_TOKEN`, or the file `<data_dir>/admin-token`.",
                },
            },
            "parameters": {
                "Session": {
                    "name": SESSION_HEADER,
                    "in": "header",
                    "required": false,
                    "description": "A simulation session id, passed to the service as gRPC metadata.",
                    "schema": {"type": "string"},
                },
            },
            "responses": {
                "Error": {
                    "description": "A refusal: the gRPC code mapped to its HTTP status.",
                    "content": {"application/json": {"schema": schema_ref(ERROR_SCHEMA)}},
                },
            },
            "schemas": components,
        },
    })
}

fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

/// The first sentence of a description, for an operation's summary.
fn summary(text: &str) -> String {
    let first = text.split("\n\n").next().unwrap_or(text).replace('\n', " ");
    match first.find(". ") {
        Some(end) => first[..=end].to_owned(),
        None => first,
    }
}

fn error_schema() -> Value {
    let codes: Vec<&str> = GrpcCode::ALL.iter().map(|code| code.name()).collect();
    json!({
        "type": "object",
        "description": "A refusal: the gRPC status and its `google.rpc.ErrorInfo`.",
        "required": ["code", "status", "message", "metadata", "details"],
        "properties": {
            "code": {"type": "string", "enum": codes, "description": "The gRPC code's name."},
            "status": {"type": "integer", "description": "The HTTP status of the answer."},
            "message": {"type": "string", "description": "For people; may change between versions."},
            "reason": {
                "type": "string",
                "description": "`ErrorInfo.reason`: stable, what clients branch on \
                    (e.g. `UNKNOWN_SERVICE`, `UNAUTHENTICATED`, `MALFORMED_BODY`, `UNKNOWN_METHOD`).",
            },
            "metadata": {
                "type": "object",
                "additionalProperties": {"type": "string"},
                "description": "`ErrorInfo.metadata`, e.g. `field` and `shep_code`.",
            },
            "details": {
                "type": "array",
                "description": "The `google.rpc.Status` details, each as a JSON `Any`.",
                "items": any_schema(),
            },
        },
    })
}

fn any_schema() -> Value {
    json!({
        "type": "object",
        "required": ["@type"],
        "properties": {"@type": {"type": "string"}},
        "additionalProperties": true,
    })
}

// === impl Comments ===

/// The leading (else trailing) comments of the pool's files, by file and
/// source path, as the descriptor set's source info carries them.
struct Comments(HashMap<(String, Vec<i32>), String>);

impl Comments {
    fn new(pool: &DescriptorPool) -> Self {
        let mut all = HashMap::new();
        for file in pool.files() {
            let proto: &FileDescriptorProto = file.file_descriptor_proto();
            let Some(info) = &proto.source_code_info else {
                continue;
            };
            for location in &info.location {
                let text = location
                    .leading_comments
                    .as_deref()
                    .or(location.trailing_comments.as_deref())
                    .map(clean)
                    .unwrap_or_default();
                if !text.is_empty() {
                    all.insert((file.name().to_owned(), location.path.clone()), text);
                }
            }
        }
        Self(all)
    }

    fn of(&self, file: &prost_reflect::FileDescriptor, path: &[i32]) -> Option<String> {
        self.0
            .get(&(file.name().to_owned(), path.to_vec()))
            .cloned()
    }
}

/// A comment's lines without the space after `//`.
fn clean(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_owned()
}

// === impl Schemas ===

/// The messages and enums referenced so far; their schemas are written by
/// [`Schemas::finish`], which follows references until none are new.
#[derive(Default)]
struct Schemas {
    messages: Vec<MessageDescriptor>,
    enums: Vec<EnumDescriptor>,
}

impl Schemas {
    /// The schema of a message-typed value: inline for the well-known types
    /// with a JSON mapping of their own, a reference otherwise.
    fn message(&mut self, message: &MessageDescriptor) -> Value {
        if let Some(schema) = well_known(message) {
            return schema;
        }
        if !self.messages.contains(message) {
            self.messages.push(message.clone());
        }
        schema_ref(message.full_name())
    }

    fn enumeration(&mut self, enumeration: &EnumDescriptor) -> Value {
        if enumeration.full_name() == "google.protobuf.NullValue" {
            return json!({"nullable": true, "description": "`null`"});
        }
        if !self.enums.contains(enumeration) {
            self.enums.push(enumeration.clone());
        }
        schema_ref(enumeration.full_name())
    }

    /// The schema of one value of `kind` (a list's item, a map's value).
    fn kind(&mut self, kind: &Kind) -> Value {
        match kind {
            Kind::Double => json!({"type": "number", "format": "double"}),
            Kind::Float => json!({"type": "number", "format": "float"}),
            Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
                json!({"type": "integer", "format": "int32"})
            }
            Kind::Uint32 | Kind::Fixed32 => {
                json!({"type": "integer", "format": "int64", "minimum": 0, "maximum": u32::MAX})
            }
            // The JSON mapping writes 64-bit integers as strings: a double
            // cannot hold them exactly.
            Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
                json!({"type": "string", "format": "int64"})
            }
            Kind::Uint64 | Kind::Fixed64 => json!({"type": "string", "format": "uint64"}),
            Kind::Bool => json!({"type": "boolean"}),
            Kind::String => json!({"type": "string"}),
            Kind::Bytes => json!({"type": "string", "format": "byte"}),
            Kind::Message(message) => self.message(message),
            Kind::Enum(enumeration) => self.enumeration(enumeration),
        }
    }

    fn field(&mut self, field: &FieldDescriptor, comments: &Comments) -> Value {
        let kind = field.kind();
        let mut schema = if field.is_map() {
            let value = match kind.as_message() {
                Some(entry) => self.kind(&entry.map_entry_value_field().kind()),
                None => json!({}),
            };
            json!({"type": "object", "additionalProperties": value})
        } else if field.is_list() {
            json!({"type": "array", "items": self.kind(&kind)})
        } else {
            self.kind(&kind)
        };
        let mut description = comments
            .of(&field.parent_file(), field.path())
            .unwrap_or_default();
        if let Some(oneof) = field
            .containing_oneof()
            .filter(|oneof| !oneof.is_synthetic())
        {
            let members: Vec<String> = oneof
                .fields()
                .map(|member| format!("`{}`", member.json_name()))
                .collect();
            let note = format!(
                "One of {} (`{}`): set at most one.",
                members.join(", "),
                oneof.name()
            );
            description = [description, note]
                .into_iter()
                .filter(|text| !text.is_empty())
                .collect::<Vec<_>>()
                .join("\n\n");
        }
        if !description.is_empty() {
            // OpenAPI 3.0 ignores a `$ref`'s siblings, so a described
            // reference goes through `allOf`.
            if schema.get("$ref").is_some() {
                schema = json!({"allOf": [schema]});
            }
            schema["description"] = json!(description);
        }
        schema
    }

    /// Writes every schema referenced, following references.
    fn finish(mut self, comments: &Comments) -> Map<String, Value> {
        let mut out = Map::new();
        let mut next = 0;
        while next < self.messages.len() {
            let message = self.messages[next].clone();
            next += 1;
            let mut properties = Map::new();
            for field in message.fields() {
                properties.insert(field.json_name().to_owned(), self.field(&field, comments));
            }
            let mut schema = json!({"type": "object", "properties": properties});
            if let Some(text) = comments.of(&message.parent_file(), message.path()) {
                schema["description"] = json!(text);
            }
            out.insert(message.full_name().to_owned(), schema);
        }
        for enumeration in &self.enums {
            let names: Vec<String> = enumeration
                .values()
                .map(|value| value.name().to_owned())
                .collect();
            let mut lines: Vec<String> = comments
                .of(&enumeration.parent_file(), enumeration.path())
                .into_iter()
                .collect();
            for value in enumeration.values() {
                if let Some(text) = comments.of(&value.parent_file(), value.path()) {
                    lines.push(format!("- `{}`: {}", value.name(), text.replace('\n', " ")));
                }
            }
            let mut schema = json!({"type": "string", "enum": names});
            if !lines.is_empty() {
                schema["description"] = json!(lines.join("\n"));
            }
            out.insert(enumeration.full_name().to_owned(), schema);
        }
        out
    }
}

/// The schemas of the well-known types whose JSON mapping is not an object
/// of their fields.
fn well_known(message: &MessageDescriptor) -> Option<Value> {
    let scalar = |schema: Value| {
        let mut schema = schema;
        schema["nullable"] = json!(true);
        schema
    };
    Some(match message.full_name() {
        "google.protobuf.Timestamp" => {
            json!({"type": "string", "format": "date-time", "description": "RFC 3339, UTC (`Z`)."})
        }
        "google.protobuf.Duration" => json!({
            "type": "string",
            "pattern": "^-?[0-9]+(\\.[0-9]{1,9})?s$",
            "description": "Seconds with an `s` suffix, e.g. `1.5s`.",
        }),
        "google.protobuf.Empty" => json!({"type": "object"}),
        "google.protobuf.Struct" => json!({"type": "object", "additionalProperties": true}),
        "google.protobuf.Value" => json!({"description": "Any JSON value."}),
        "google.protobuf.ListValue" => json!({"type": "array", "items": {}}),
        "google.protobuf.FieldMask" => json!({
            "type": "string",
            "description": "Field paths in lowerCamelCase, separated by commas.",
        }),
        "google.protobuf.Any" => any_schema(),
        "google.protobuf.DoubleValue" => scalar(json!({"type": "number", "format": "double"})),
        "google.protobuf.FloatValue" => scalar(json!({"type": "number", "format": "float"})),
        "google.protobuf.Int64Value" => scalar(json!({"type": "string", "format": "int64"})),
        "google.protobuf.UInt64Value" => scalar(json!({"type": "string", "format": "uint64"})),
        "google.protobuf.Int32Value" => scalar(json!({"type": "integer", "format": "int32"})),
        "google.protobuf.UInt32Value" => {
            scalar(json!({"type": "integer", "format": "int64", "minimum": 0}))
        }
        "google.protobuf.BoolValue" => scalar(json!({"type": "boolean"})),
        "google.protobuf.StringValue" => scalar(json!({"type": "string"})),
        "google.protobuf.BytesValue" => scalar(json!({"type": "string", "format": "byte"})),
        _ => return None,
    })
}
