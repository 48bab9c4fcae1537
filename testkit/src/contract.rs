//! The published OpenAPI document as the judge of every answer a test
//! receives: an answer to a documented operation must have a status the
//! operation documents, every header documented for that status, and a
//! body of a documented media type that validates against its schema. So
//! every api test is a contract test, and the document cannot promise what
//! the code does not do.
//!
//! The document is fetched once per test process and its schemas compiled
//! once; the operations the tests reached are recorded process-wide, so one
//! test can assert that every operation was exercised.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Mutex, OnceLock, PoisonError};

use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderMap};
use serde_json::{Value, json};

/// An operation of the document: its method (lower case, as the document
/// spells it) and its path template, e.g. `("get", "/api/jobs/{id}")`.
pub type Operation = (String, String);

static CONTRACT: OnceLock<Contract> = OnceLock::new();
static EXERCISED: Mutex<BTreeSet<Operation>> = Mutex::new(BTreeSet::new());
static API_ORIGINS: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

/// Marks `address` (`http://127.0.0.1:<port>`) as an api's: answers from
/// it are checked. A worker's `/healthz` shares a path with the api's but
/// is not described by its document.
pub(crate) fn serves_api(address: &str) {
    API_ORIGINS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(address.trim_end_matches('/').to_owned());
}

fn is_api(url: &reqwest::Url) -> bool {
    let origin = url.origin().ascii_serialization();
    API_ORIGINS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .contains(&origin)
}

/// Every operation the published document lists. Panics if no test app has
/// started in this process yet (the document comes from the first one).
pub fn documented_operations() -> BTreeSet<Operation> {
    let contract = CONTRACT
        .get()
        .expect("a test app has started, so the document is loaded");
    contract
        .routes
        .iter()
        .map(|route| (route.method.clone(), route.template.clone()))
        .collect()
}

/// Every operation a test in this process has called and had its answer
/// checked, so far.
pub fn exercised_operations() -> BTreeSet<Operation> {
    EXERCISED
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
}

/// The document and its compiled schemas.
pub(crate) struct Contract {
    routes: Vec<Route>,
    validators: Vec<jsonschema::Validator>,
}

/// One documented operation.
struct Route {
    method: String,
    template: String,
    /// The template's segments; `None` is a parameter.
    segments: Vec<Option<String>>,
    /// By status (`"200"`).
    answers: BTreeMap<String, Answer>,
}

/// One documented answer of an operation.
struct Answer {
    headers: Vec<String>,
    /// By media type, with the index of its JSON schema's validator.
    content: BTreeMap<String, Option<usize>>,
}

/// What the document expects of the body of one answer.
pub(crate) struct Expected<'a> {
    call: String,
    validator: &'a jsonschema::Validator,
}

/// The document, fetched from the api at `address` the first time a test
/// app starts in this process; answers from `address` are checked.
pub(crate) async fn load(client: &reqwest::Client, address: &str) -> &'static Contract {
    serves_api(address);
    if let Some(contract) = CONTRACT.get() {
        return contract;
    }
    let response = client
        .get(format!("{address}/api/openapi.json"))
        .send()
        .await
        .expect("the api serves its OpenAPI document");
    assert_eq!(response.status(), 200, "the OpenAPI document is served");
    let document: Value = response.json().await.expect("the document is JSON");
    // Two apps starting at once may both fetch it: they serve the same one.
    CONTRACT.get_or_init(|| Contract::compile(&document))
}

impl Contract {
    fn compile(document: &Value) -> Self {
        let mut validators = Vec::new();
        // Most answers share a schema (`ErrorBody`): compiled once each.
        let mut compiled: HashMap<String, usize> = HashMap::new();
        let mut compile = |schema: &Value| {
            *compiled.entry(schema.to_string()).or_insert_with(|| {
                let strict = strict_schema(schema, &document["components"]);
                let validator = jsonschema::validator_for(&strict)
                    .unwrap_or_else(|error| panic!("the schema {schema} compiles: {error}"));
                validators.push(validator);
                validators.len() - 1
            })
        };
        let mut routes = Vec::new();
        for (template, item) in document["paths"].as_object().into_iter().flatten() {
            for (method, operation) in item.as_object().into_iter().flatten() {
                let answers = operation["responses"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(status, answer)| {
                        let headers = answer["headers"]
                            .as_object()
                            .into_iter()
                            .flatten()
                            .map(|(name, _)| name.to_ascii_lowercase())
                            .collect();
                        let content = answer["content"]
                            .as_object()
                            .into_iter()
                            .flatten()
                            .map(|(media, body)| {
                                let json =
                                    media == "application/json" && body.get("schema").is_some();
                                (media.clone(), json.then(|| compile(&body["schema"])))
                            })
                            .collect();
                        (status.clone(), Answer { headers, content })
                    })
                    .collect();
                routes.push(Route {
                    method: method.clone(),
                    template: template.clone(),
                    segments: segments(template)
                        .map(|segment| {
                            let parameter = segment.starts_with('{') && segment.ends_with('}');
                            (!parameter).then(|| segment.to_owned())
                        })
                        .collect(),
                    answers,
                });
            }
        }
        Self { routes, validators }
    }

    /// The documented operation `method path` is an answer to: of the
    /// templates that match, the one with the most fixed segments
    /// (`/failed/retry` before `/failed/{id}`).
    fn route(&self, method: &str, path: &str) -> Option<&Route> {
        let method = method.to_ascii_lowercase();
        let given: Vec<&str> = segments(path).collect();
        self.routes
            .iter()
            .filter(|route| route.method == method && route.segments.len() == given.len())
            .filter(|route| {
                route.segments.iter().zip(&given).all(|(segment, given)| {
                    segment.as_deref().is_none_or(|segment| segment == *given)
                })
            })
            .max_by_key(|route| route.segments.iter().flatten().count())
    }

    /// Checks an answer's status and headers against the document and
    /// records the operation as exercised. `None` when the document does
    /// not describe `method url` (not an api's, or not an operation of it)
    /// or the body is not JSON; otherwise what its body must be. Panics, naming the
    /// call, on what the document does not allow.
    pub(crate) fn check_head(
        &self,
        method: &str,
        url: &reqwest::Url,
        status: u16,
        headers: &HeaderMap,
    ) -> Option<Expected<'_>> {
        if !is_api(url) {
            return None;
        }
        let path = url.path();
        let route = self.route(method, path)?;
        let call = format!("{} {path} ({}) answered {status}", method, route.template);
        let answer = route.answers.get(&status.to_string()).unwrap_or_else(|| {
            let documented: Vec<&String> = route.answers.keys().collect();
            panic!("{call}, which the OpenAPI document does not list (it lists {documented:?})")
        });
        EXERCISED
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert((route.method.clone(), route.template.clone()));
        for name in &answer.headers {
            assert!(
                headers.contains_key(name.as_str()),
                "{call} without the header `{name}` the OpenAPI document promises"
            );
        }
        let media = headers
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split(';').next())
            .map(|media| media.trim().to_ascii_lowercase());
        let empty = headers
            .get(CONTENT_LENGTH)
            .is_some_and(|length| length.as_bytes() == b"0");
        let Some(media) = media.filter(|_| !empty) else {
            assert!(
                answer.content.is_empty() || status == 304 || method == "HEAD",
                "{call} without the body the OpenAPI document describes ({:?})",
                answer.content.keys().collect::<Vec<_>>()
            );
            return None;
        };
        let Some(schema) = answer.content.get(&media) else {
            panic!(
                "{call} with a `{media}` body, which the OpenAPI document does not describe \
                 (it describes {:?})",
                answer.content.keys().collect::<Vec<_>>()
            );
        };
        schema.map(|index| Expected {
            call,
            validator: &self.validators[index],
        })
    }
}

impl Expected<'_> {
    /// Panics, naming the call and every schema error, unless `body` is
    /// JSON the document's schema accepts.
    pub(crate) fn check_body(&self, body: &[u8]) {
        let call = &self.call;
        let body: Value = serde_json::from_slice(body).unwrap_or_else(|error| {
            panic!(
                "{call} with a body that is not JSON ({error}): {}",
                String::from_utf8_lossy(body)
            )
        });
        let errors: Vec<String> = self
            .validator
            .iter_errors(&body)
            .map(|error| format!("{error} at `{}`", error.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{call} with a body the OpenAPI document's schema refuses: {errors:#?}\n{body}"
        );
    }
}

/// A path's segments, without the empty one before its leading `/`.
fn segments(path: &str) -> impl Iterator<Item = &str> {
    path.strip_prefix('/').unwrap_or(path).split('/')
}

/// `schema` with the document's components beside it, where every
/// reference to a schema is closed (`unevaluatedProperties: false`, which
/// sees through `allOf`), so a field the code sends but the document omits
/// fails too. References inside `allOf` stay open: they are parts of one
/// object.
fn strict_schema(schema: &Value, components: &Value) -> Value {
    let mut root = schema.clone();
    root["components"] = components.clone();
    close_references(&mut root, false);
    root
}

fn close_references(schema: &mut Value, part_of_all_of: bool) {
    match schema {
        Value::Object(object) => {
            if object.contains_key("$ref") && !part_of_all_of {
                object.insert("unevaluatedProperties".into(), json!(false));
            }
            for (key, value) in object.iter_mut() {
                if key == "allOf" {
                    for part in value.as_array_mut().into_iter().flatten() {
                        close_references(part, true);
                    }
                } else {
                    close_references(value, false);
                }
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|item| close_references(item, false)),
        _ => {}
    }
}
