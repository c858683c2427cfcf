//! `postern admin dkim`: DKIM keys of the signing domains (SPEC §5). `create` prints the
//! new key with its DNS record; `record` prints that record as a zone-file line to publish.

use super::args::DkimCmd;
use super::command::{call, encode};
use super::{Call, View};
use serde_json::json;

const KEYS: &[&str] = &["/domain", "/selector", "/algorithm", "/status", "/dns/name"];

pub fn plan(cmd: &DkimCmd) -> Call {
    let one = |d: &str, s: &str| format!("/api/v1/dkim-keys/{}/{}", encode(d), encode(s));
    match cmd {
        DkimCmd::List => call("GET", "/api/v1/dkim-keys", None, View::Table(KEYS)),
        DkimCmd::Create {
            domain,
            algorithm,
            selector,
            activate,
        } => call(
            "POST",
            "/api/v1/dkim-keys",
            Some(
                json!({"domain": domain, "algorithm": algorithm, "selector": selector, "activate": activate}),
            ),
            View::Record,
        ),
        DkimCmd::Show { domain, selector } => {
            call("GET", one(domain, selector), None, View::Record)
        }
        DkimCmd::Record { domain, selector } => {
            call("GET", one(domain, selector), None, View::Zone)
        }
        DkimCmd::Activate { domain, selector } => call(
            "POST",
            format!("{}/activate", one(domain, selector)),
            None,
            View::Record,
        ),
        DkimCmd::Delete { domain, selector } => {
            call("DELETE", one(domain, selector), None, View::Done)
        }
    }
}
