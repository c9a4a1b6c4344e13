package manifest

// Schema returns a JSON Schema (draft 2020-12) of the manifest's second
// document, after rendering (what `kiln render --schema` prints). Editors
// can use it to complete and check manifests; kiln itself checks
// manifests in Load, with positions.
func Schema() []byte {
	return []byte(schema)
}

const schema = `{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "$id": "https://github.com/kiln-build/kiln/manifest.schema.json",
  "title": "kiln manifest",
  "description": "The build document of a kiln manifest, as rendered. A manifest may start with another document: {vars: {NAME: default}, env_vars: [NAME]}.",
  "type": "object",
  "additionalProperties": false,
  "properties": {
    "from": {"$ref": "#/$defs/from"},
    "language": {"$ref": "#/$defs/from", "description": "Travis-style alias of from."},
    "env": {"$ref": "#/$defs/env"},
    "workdir": {"type": "string", "minLength": 1},
    "user": {"type": "string", "minLength": 1},
    "toolbox": {"$ref": "#/$defs/toolbox"},
    "steps": {"$ref": "#/$defs/steps"},
    "install": {"$ref": "#/$defs/steps", "description": "Travis-style alias of steps."},
    "tests": {"$ref": "#/$defs/tests"},
    "script": {"$ref": "#/$defs/script"},
    "services": {"$ref": "#/$defs/services"},
    "image": {"$ref": "#/$defs/image"},
    "stages": {
      "type": "object",
      "description": "Named stages, in order; the target (or the last stage) becomes the image. With stages, from, steps and tests go inside them.",
      "minProperties": 1,
      "propertyNames": {"pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]*$"},
      "additionalProperties": {"oneOf": [{"$ref": "#/$defs/stage"}, {"$ref": "#/$defs/dockerfileStage"}]}
    },
    "target": {"type": "string", "minLength": 1, "description": "The stage that becomes the image (--target overrides it)."},
    "platforms": {"type": "array", "minItems": 1, "items": {"type": "string", "pattern": "^[A-Za-z0-9_]+(/[A-Za-z0-9_]+){0,2}$"}, "description": "The platforms to build for (os/arch[/variant]) when --platform is not given: one image index of an image each."}
  },
  "allOf": [
    {"not": {"required": ["from", "language"]}},
    {"not": {"required": ["steps", "install"]}},
    {"not": {"required": ["tests", "script"]}},
    {
      "if": {"required": ["stages"]},
      "then": {"allOf": [
        {"not": {"required": ["from"]}}, {"not": {"required": ["language"]}},
        {"not": {"required": ["steps"]}}, {"not": {"required": ["install"]}},
        {"not": {"required": ["tests"]}}, {"not": {"required": ["script"]}},
        {"not": {"required": ["env"]}}, {"not": {"required": ["workdir"]}},
        {"not": {"required": ["user"]}}, {"not": {"required": ["toolbox"]}},
        {"not": {"required": ["services"]}}
      ]},
      "else": {"anyOf": [{"required": ["from"]}, {"required": ["language"]}]}
    }
  ],
  "$defs": {
    "from": {
      "oneOf": [
        {"type": "string", "minLength": 1, "description": "The base: scratch, an image reference, oci-layout:DIR[:TAG], docker-archive:FILE, or another stage's name."},
        {
          "type": "object",
          "additionalProperties": false,
          "required": ["image"],
          "properties": {
            "image": {"type": "string", "minLength": 1, "description": "The base, as from: takes it."},
            "platform": {"type": "string", "minLength": 1, "description": "build (the machine's: a build stage that runs no emulated step), target (the default), or os/arch[/variant]."}
          }
        }
      ]
    },
    "scalar": {"type": ["string", "number", "boolean"]},
    "env": {"type": "object", "additionalProperties": {"$ref": "#/$defs/scalar"}},
    "command": {
      "oneOf": [
        {"type": "string", "minLength": 1, "description": "Shell form: run with /bin/sh -c."},
        {"type": "array", "items": {"$ref": "#/$defs/scalar"}, "minItems": 1, "description": "Exec form."}
      ]
    },
    "source": {
      "type": "string",
      "minLength": 1,
      "not": {"pattern": "^(/|\\.\\.(/|$))"},
      "description": "A path relative to the build context, inside it."
    },
    "toolbox": {"type": "array", "items": {"$ref": "#/$defs/source"}},
    "steps": {"type": "array", "items": {"$ref": "#/$defs/step"}},
    "step": {
      "oneOf": [
        {"type": "string", "minLength": 1, "description": "A shell command (the same as {run: COMMAND})."},
        {"type": "object", "additionalProperties": false, "required": ["run"], "properties": {
          "run": {"$ref": "#/$defs/command"},
          "timeout": {"type": "string", "description": "kill the step after this long, e.g. 30s or 5m"},
          "memory": {"type": ["string", "integer"], "description": "memory limit, e.g. 512m or 2g"},
          "pids": {"type": "integer", "minimum": 1, "description": "most processes at once"},
          "services": {"$ref": "#/$defs/serviceNames"}
        }},
        {"type": "object", "additionalProperties": false, "required": ["copy"], "properties": {"copy": {
          "oneOf": [
            {"type": "string", "pattern": "^\\s*\\S+\\s+\\S+\\s*$", "description": "\"SRC DST\""},
            {
              "type": "object",
              "additionalProperties": false,
              "required": ["src", "dst"],
              "if": {"not": {"required": ["from"]}},
              "then": {"properties": {"src": {"oneOf": [{"$ref": "#/$defs/source"}, {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/source"}}]}}},
              "properties": {
                "src": {"oneOf": [{"type": "string", "minLength": 1}, {"type": "array", "minItems": 1, "items": {"type": "string", "minLength": 1}}], "description": "A source, or a list of them (dst is then a directory)."},
                "dst": {"type": "string", "minLength": 1},
                "from": {"type": "string", "minLength": 1, "description": "A stage to copy from; without it, src is in the build context."},
                "mode": {"type": ["string", "integer"], "description": "An octal mode, 0644."},
                "owner": {"type": "string", "minLength": 1, "description": "uid:gid"}
              }
            }
          ]
        }}},
        {"type": "object", "additionalProperties": false, "required": ["template"], "properties": {"template": {
          "oneOf": [
            {"type": "string", "pattern": "^\\s*\\S+\\s+\\S+\\s*$", "description": "\"SRC DST\""},
            {
              "type": "object",
              "additionalProperties": false,
              "required": ["src", "dst"],
              "properties": {"src": {"$ref": "#/$defs/source"}, "dst": {"type": "string", "minLength": 1}}
            }
          ]
        }}},
        {"type": "object", "additionalProperties": false, "required": ["env"], "properties": {"env": {"$ref": "#/$defs/env", "minProperties": 1}}},
        {"type": "object", "additionalProperties": false, "required": ["workdir"], "properties": {"workdir": {"type": "string", "minLength": 1}}},
        {"type": "object", "additionalProperties": false, "required": ["user"], "properties": {"user": {"type": "string", "minLength": 1}}},
        {"type": "object", "additionalProperties": false, "required": ["use"], "properties": {
          "use": {"type": "string", "minLength": 1, "description": "A module: a path relative to the manifest (a YAML file, or a directory holding module.yml), inside the build context, or oci://REGISTRY/REPO:TAG or oci://REGISTRY/REPO@sha256:DIGEST. Its steps are inlined, named after it."},
          "with": {"type": ["object", "null"], "description": "The module's parameters (kiln module doc SOURCE lists them)."}
        }}
      ]
    },
    "tests": {
      "type": "array",
      "items": {
        "type": "object",
        "additionalProperties": false,
        "required": ["name", "run"],
        "properties": {
          "name": {"type": "string", "minLength": 1},
          "run": {"$ref": "#/$defs/command"},
          "timeout": {"type": ["string", "integer"], "description": "A Go duration (30s, 2m) or a number of seconds."},
          "services": {"$ref": "#/$defs/serviceNames"}
        }
      }
    },
    "serviceNames": {
      "type": "array",
      "description": "The stage's services the test (or run step) runs beside, in one pod (a network namespace: each service's name is 127.0.0.1).",
      "uniqueItems": true,
      "items": {"type": "string", "minLength": 1}
    },
    "services": {
      "type": "object",
      "description": "Containers started beside the tests that name them, by name: an image reference, or a map.",
      "propertyNames": {"pattern": "^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?$"},
      "additionalProperties": {"oneOf": [
        {"type": "string", "minLength": 1, "description": "An image reference."},
        {
          "type": "object",
          "additionalProperties": false,
          "oneOf": [{"required": ["image"]}, {"required": ["stage"]}],
          "properties": {
            "image": {"type": "string", "minLength": 1, "description": "An image reference."},
            "stage": {"type": "string", "minLength": 1, "description": "A stage of this manifest."},
            "command": {"$ref": "#/$defs/command", "description": "Replaces the image's entrypoint and cmd."},
            "env": {"$ref": "#/$defs/env"},
            "user": {"type": "string", "minLength": 1},
            "workdir": {"type": "string", "minLength": 1},
            "ready": {"oneOf": [
              {"type": "object", "additionalProperties": false, "required": ["port"], "properties": {"port": {"type": ["integer", "string"], "description": "Ready when this TCP port listens in the pod."}}},
              {"type": "object", "additionalProperties": false, "required": ["run"], "properties": {"run": {"$ref": "#/$defs/command", "description": "Ready when this command, run in the service's container, exits 0 (retried)."}}}
            ]},
            "timeout": {"type": ["string", "integer"], "description": "How long it may take to get ready; the default is 60s."},
            "share": {"type": "boolean", "description": "Start it once for every test of the stage that needs it, instead of once per test."}
          }
        }
      ]}
    },
    "script": {
      "type": "array",
      "description": "Travis-style tests: line N is a test named script-N.",
      "items": {"$ref": "#/$defs/command"}
    },
    "stage": {
      "type": "object",
      "additionalProperties": false,
      "properties": {
        "from": {"$ref": "#/$defs/from"},
        "language": {"$ref": "#/$defs/from"},
        "env": {"$ref": "#/$defs/env"},
        "workdir": {"type": "string", "minLength": 1},
        "user": {"type": "string", "minLength": 1},
        "toolbox": {"$ref": "#/$defs/toolbox"},
        "steps": {"$ref": "#/$defs/steps"},
        "install": {"$ref": "#/$defs/steps"},
        "tests": {"$ref": "#/$defs/tests"},
        "script": {"$ref": "#/$defs/script"},
        "services": {"$ref": "#/$defs/services"}
      },
      "anyOf": [{"required": ["from"]}, {"required": ["language"]}]
    },
    "dockerfileStage": {
      "type": "object",
      "description": "A stage built from a Dockerfile: its target stage (else its last), with the stages that one uses. Its COPY sources are in the build context.",
      "additionalProperties": false,
      "required": ["dockerfile"],
      "properties": {
        "dockerfile": {"type": "string", "minLength": 1, "description": "The Dockerfile, relative to the manifest's directory."},
        "target": {"type": "string", "minLength": 1, "description": "The Dockerfile's stage to build; the default is its last."},
        "args": {"type": "object", "additionalProperties": {"$ref": "#/$defs/scalar"}, "description": "The Dockerfile's build args (--build-arg wins over them)."}
      }
    },
    "argv": {
      "oneOf": [
        {"type": "string", "description": "Shell form: [\"/bin/sh\", \"-c\", STRING]."},
        {"type": "array", "items": {"$ref": "#/$defs/scalar"}, "description": "Exec form; [] clears the base image's value."},
        {"type": "null", "description": "Keep the base image's value."}
      ]
    },
    "image": {
      "type": "object",
      "additionalProperties": false,
      "properties": {
        "cmd": {"$ref": "#/$defs/argv"},
        "entrypoint": {"$ref": "#/$defs/argv"},
        "env": {"$ref": "#/$defs/env"},
        "workdir": {"type": "string"},
        "user": {"type": "string"},
        "expose": {
          "type": "array",
          "items": {"oneOf": [
            {"type": "integer", "minimum": 1, "maximum": 65535},
            {"type": "string", "pattern": "^[0-9]{1,5}(/(tcp|udp|sctp))?$"}
          ]}
        },
        "labels": {"type": "object", "additionalProperties": {"$ref": "#/$defs/scalar"}},
        "volumes": {"type": "array", "items": {"type": "string"}},
        "stopsignal": {"type": "string", "minLength": 1}
      }
    }
  }
}
`
