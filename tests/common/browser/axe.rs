//! Accessibility checks: axe-core (from npm, see `setup::axe_source`) run in the page the
//! browser shows.

use super::setup::axe_source;
use super::Browser;
use serde::Deserialize;

/// One axe-core rule violation.
#[derive(Debug, Clone, Deserialize)]
pub struct Violation {
    pub id: String,
    /// `minor`, `moderate`, `serious` or `critical`.
    pub impact: Option<String>,
    pub help: String,
    pub nodes: Vec<AxeNode>,
}

/// One element a violation names.
#[derive(Debug, Clone, Deserialize)]
pub struct AxeNode {
    /// CSS selector(s) of the element.
    pub target: String,
    pub html: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let impact = self.impact.as_deref().unwrap_or("?");
        writeln!(f, "{} ({impact}): {}", self.id, self.help)?;
        for node in &self.nodes {
            writeln!(f, "    {}: {}", node.target, node.html)?;
        }
        Ok(())
    }
}

impl Browser {
    /// Runs axe-core (every rule of its default set) in the current page and returns its
    /// violations.
    pub async fn axe(&self) -> Vec<Violation> {
        const RUN: &str = "const done = arguments[arguments.length - 1];\
            axe.run(document).then(r => done(JSON.stringify(r.violations.map(v => ({\
                id: v.id, impact: v.impact, help: v.help,\
                nodes: v.nodes.map(n => ({target: n.target.join(' '), html: n.html}))\
            }))))).catch(e => done('axe failed: ' + e));";
        let client = self.client();
        let source = axe_source();
        client
            .execute(&format!("{source}\n;return typeof window.axe;"), vec![])
            .await
            .expect("axe-core loads");
        let result = client.execute_async(RUN, vec![]).await.expect("axe runs");
        let text = result.as_str().unwrap_or_default();
        serde_json::from_str(text).unwrap_or_else(|e| panic!("axe's answer {text:?}: {e}"))
    }

    /// Panics, listing them, if axe-core finds violations in the current page.
    pub async fn assert_accessible(&self) {
        let violations = self.axe().await;
        if !violations.is_empty() {
            let list: String = violations.iter().map(|v| v.to_string()).collect();
            panic!("axe-core violations on {}:\n{list}", self.url().await);
        }
    }
}
