//! The HTTP client tests talk to the api with: reqwest's, except that every
//! answer to an operation of the OpenAPI document is checked against it
//! ([`contract`](crate::contract)) before the test sees it.

use std::fmt::Display;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Body, IntoUrl, Method, Response};
use serde::Serialize;

use crate::contract::Contract;

/// A client whose answers are checked against the published OpenAPI
/// document (the requests are built as with [`reqwest::Client`]).
#[derive(Clone)]
pub struct Client {
    inner: reqwest::Client,
    contract: &'static Contract,
}

impl Client {
    pub(crate) fn new(inner: reqwest::Client, contract: &'static Contract) -> Self {
        Self { inner, contract }
    }

    /// A `method` request to `url`.
    pub fn request<U: IntoUrl>(&self, method: Method, url: U) -> RequestBuilder {
        RequestBuilder {
            inner: self.inner.request(method, url),
            contract: self.contract,
        }
    }

    /// A `GET` request to `url`.
    pub fn get<U: IntoUrl>(&self, url: U) -> RequestBuilder {
        self.request(Method::GET, url)
    }

    /// A `POST` request to `url`.
    pub fn post<U: IntoUrl>(&self, url: U) -> RequestBuilder {
        self.request(Method::POST, url)
    }

    /// A `PUT` request to `url`.
    pub fn put<U: IntoUrl>(&self, url: U) -> RequestBuilder {
        self.request(Method::PUT, url)
    }

    /// A `PATCH` request to `url`.
    pub fn patch<U: IntoUrl>(&self, url: U) -> RequestBuilder {
        self.request(Method::PATCH, url)
    }

    /// A `DELETE` request to `url`.
    pub fn delete<U: IntoUrl>(&self, url: U) -> RequestBuilder {
        self.request(Method::DELETE, url)
    }

    /// A `HEAD` request to `url`.
    pub fn head<U: IntoUrl>(&self, url: U) -> RequestBuilder {
        self.request(Method::HEAD, url)
    }
}

/// A request being built; [`send`](Self::send) checks its answer.
#[must_use = "a request does nothing until it is sent"]
pub struct RequestBuilder {
    inner: reqwest::RequestBuilder,
    contract: &'static Contract,
}

impl RequestBuilder {
    /// Adds a header.
    pub fn header<K, V>(self, key: K, value: V) -> Self
    where
        HeaderName: TryFrom<K>,
        <HeaderName as TryFrom<K>>::Error: Into<http::Error>,
        HeaderValue: TryFrom<V>,
        <HeaderValue as TryFrom<V>>::Error: Into<http::Error>,
    {
        self.map(|inner| inner.header(key, value))
    }

    /// Adds headers.
    pub fn headers(self, headers: HeaderMap) -> Self {
        self.map(|inner| inner.headers(headers))
    }

    /// `Authorization: Bearer <token>`.
    pub fn bearer_auth<T: Display>(self, token: T) -> Self {
        self.map(|inner| inner.bearer_auth(token))
    }

    /// The body, as given.
    pub fn body<T: Into<Body>>(self, body: T) -> Self {
        self.map(|inner| inner.body(body))
    }

    /// `json` as the body, with `Content-Type: application/json`.
    pub fn json<T: Serialize + ?Sized>(self, json: &T) -> Self {
        self.map(|inner| inner.json(json))
    }

    /// `form` as an urlencoded body.
    pub fn form<T: Serialize + ?Sized>(self, form: &T) -> Self {
        self.map(|inner| inner.form(form))
    }

    /// How long the whole exchange may take.
    pub fn timeout(self, timeout: Duration) -> Self {
        self.map(|inner| inner.timeout(timeout))
    }

    /// Sends the request. The answer is checked against the OpenAPI
    /// document when it describes the operation: the test panics, naming
    /// the call, on a status, header or body the document does not allow.
    pub async fn send(self) -> reqwest::Result<Response> {
        let (client, request) = self.inner.build_split();
        let request = request?;
        let method = request.method().clone();
        let url = request.url().clone();
        let response = client.execute(request).await?;
        let expected = self.contract.check_head(
            method.as_str(),
            &url,
            response.status().as_u16(),
            response.headers(),
        );
        let Some(expected) = expected else {
            return Ok(response);
        };
        // The body is read to be checked, then handed back to the test as
        // if unread (status, headers and URL included).
        let (parts, body) = http::Response::<Body>::from(response).into_parts();
        let bytes = Response::from(http::Response::new(body)).bytes().await?;
        expected.check_body(&bytes);
        Ok(Response::from(http::Response::from_parts(parts, bytes)))
    }

    fn map(self, change: impl FnOnce(reqwest::RequestBuilder) -> reqwest::RequestBuilder) -> Self {
        Self {
            inner: change(self.inner),
            contract: self.contract,
        }
    }
}
