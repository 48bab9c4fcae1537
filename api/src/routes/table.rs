//! Every endpoint of the api, module by module, and the document that
//! describes them: both come out of the same declarations.

use axum::Router;
use axum::routing::get;
use utoipa::OpenApi as _;

use super::endpoints::{Endpoints, Limits};
use super::{
    admin, email, events, health, jobs, me, media, metrics, openapi, password, photos, preferences,
    session, signup, web, webhooks,
};
use crate::state::AppState;

/// The routes and their OpenAPI document (served at
/// [`openapi::PATH`]).
pub fn routes(state: &AppState) -> Router<AppState> {
    let modules = [
        signup::endpoints,
        session::endpoints,
        password::endpoints,
        email::endpoints,
        me::endpoints,
        preferences::endpoints,
        jobs::endpoints,
        events::endpoints,
        photos::endpoints,
        media::endpoints,
        webhooks::endpoints,
        health::endpoints,
        admin::endpoints,
        metrics::endpoints,
        web::endpoints,
    ];
    let endpoints = Endpoints::new(openapi::ApiDoc::openapi(), state);
    let (router, document) = modules
        .into_iter()
        .fold(endpoints, |endpoints, module| module(endpoints))
        .into_parts();
    let document = openapi::Document::render(&document);
    let served = get(move |headers| {
        let document = document.clone();
        async move { document.answer(&headers) }
    });
    // The document describes the contract; it is not an operation of it.
    router.route(openapi::PATH, Limits::JSON.apply(served, state))
}
