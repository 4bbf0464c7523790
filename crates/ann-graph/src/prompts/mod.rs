//! Every prompt of the forward phase and of team construction, as pure functions of their inputs.
//!
//! `forward.rs` holds the forward phase's (agents, aggregators, routing), `team.rs` team
//! construction's; both are re-exported here.

pub(crate) mod forward;
mod team;

pub use forward::*;
pub use team::*;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{check_messages, sample_network};
    use crate::{AggregatorName, ValidationRules};

    fn answers() -> Vec<Answer<'static>> {
        vec![
            Answer { agent: "a1", role: "A careful solver.", text: "x = 4, so \\boxed{4}" },
            Answer { agent: "a2", role: "A fast solver.", text: "\\boxed{5}" },
        ]
    }

    #[test]
    fn render_task_snapshot() {
        insta::assert_snapshot!(render_task("Solve the problem. Put the answer in \\boxed{}.\n", "What is 2+2?"));
    }

    #[test]
    fn agent_prompt_substitutes_once_and_keeps_task_visible() {
        let with_all = render_agent_prompt("T={task} I={input} P={peer_outputs} {x} \\boxed{}", "t {input}", "i", None);
        assert_eq!(with_all, "T=t {input} I=i P= {x} \\boxed{}");
        let no_task = render_agent_prompt("Solve {input}", "the task", "2+2", Some("peers"));
        insta::assert_snapshot!(no_task);
        assert_eq!(truncate_chars("héllo", 2), "hé\n[... truncated]");
        assert_eq!(truncate_chars("héllo", 5), "héllo");
    }

    #[test]
    fn agent_messages_snapshot() {
        let net = sample_network();
        let layer = &net.layers[1];
        insta::assert_snapshot!(check_messages(&agent_messages(layer, &layer.agents[0], "TASK", "INPUT", None)));
    }

    #[test]
    fn peer_blocks_snapshot() {
        let a = answers();
        insta::assert_snapshot!(format!(
            "{}\n=====\n{}\n=====\n{}\n=====\n{}",
            debate_peers(&a),
            refine_peers(&a[0]),
            concatenate(&a),
            revise_peers("draft text", &a)
        ));
    }

    #[test]
    fn synthesis_snapshot() {
        let net = sample_network();
        insta::assert_snapshot!(check_messages(&synthesis("TASK", &net.layers[1], "INPUT", "A merger.", &answers())));
    }

    #[test]
    fn judge_snapshot() {
        let net = sample_network();
        insta::assert_snapshot!(check_messages(&judge("TASK", &net.layers[1], "INPUT", &answers())));
    }

    #[test]
    fn critique_snapshot() {
        let net = sample_network();
        let layer = &net.layers[1];
        insta::assert_snapshot!(check_messages(&critique("TASK", layer, "INPUT", &layer.agents[1], &answers()[0])));
    }

    #[test]
    fn routing_snapshot() {
        let net = sample_network();
        let stats = [RoutingStat { aggregator: AggregatorName::MajorityVote, mean_score: 0.625, uses: 8 }];
        insta::assert_snapshot!(check_messages(&routing("TASK", &net.layers[1], "INPUT", 2, &stats)));
    }

    #[test]
    fn decomposition_snapshot() {
        let rules = ValidationRules::with_answer_format("\\boxed{}");
        let msgs = decomposition("Solve competition maths problems.", &["What is 2+2?", "Solve x^2=4."], &[], &rules);
        insta::assert_snapshot!(check_messages(&msgs));
        insta::assert_snapshot!(decomposition_retry(&[
            "[placeholder] agent `a1` in layer `solve`: the prompt lacks `{input}`".into()
        ]));
    }

    #[test]
    fn decomposition_with_a_library_snapshot() {
        let rules = ValidationRules::with_answer_format("\\boxed{}");
        let mut small = sample_network();
        small.layers.truncate(1);
        let library = [
            crate::LibraryNetwork { name: "runs/math-1".into(), validation: Some(0.625), network: small.clone() },
            crate::LibraryNetwork { name: "runs/other".into(), validation: None, network: small },
        ];
        let msgs = decomposition("Solve algebra word problems.", &["A train leaves at 3pm..."], &library, &rules);
        insta::assert_snapshot!(check_messages(&msgs));
    }
}
