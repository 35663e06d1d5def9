//! The step dependency graph: cycle detection and the stages of steps that can run together.

use std::collections::HashMap;

/// Steps grouped into stages: every step's `needs` are in earlier stages. `Err` names a cycle.
pub fn stages(steps: &[(String, Vec<String>)]) -> Result<Vec<Vec<usize>>, Vec<String>> {
    if let Some(cycle) = find_cycle(steps) {
        return Err(cycle);
    }
    let index: HashMap<&str, usize> = steps
        .iter()
        .enumerate()
        .map(|(i, (id, _))| (id.as_str(), i))
        .collect();
    let mut depth = vec![usize::MAX; steps.len()];
    fn depth_of(
        i: usize,
        steps: &[(String, Vec<String>)],
        index: &HashMap<&str, usize>,
        depth: &mut Vec<usize>,
    ) -> usize {
        if depth[i] != usize::MAX {
            return depth[i];
        }
        let d = steps[i]
            .1
            .iter()
            .filter_map(|n| index.get(n.as_str()))
            .map(|&j| depth_of(j, steps, index, depth) + 1)
            .max()
            .unwrap_or(0);
        depth[i] = d;
        d
    }
    let mut stages: Vec<Vec<usize>> = Vec::new();
    for i in 0..steps.len() {
        let d = depth_of(i, steps, &index, &mut depth);
        if stages.len() <= d {
            stages.resize(d + 1, Vec::new());
        }
        stages[d].push(i);
    }
    Ok(stages)
}

/// The first dependency cycle found, as the ids along it with the first repeated at the end.
pub fn find_cycle(steps: &[(String, Vec<String>)]) -> Option<Vec<String>> {
    let index: HashMap<&str, usize> = steps
        .iter()
        .enumerate()
        .map(|(i, (id, _))| (id.as_str(), i))
        .collect();
    // 0 = unvisited, 1 = on the current path, 2 = done.
    let mut state = vec![0u8; steps.len()];
    let mut path = Vec::new();
    fn visit(
        i: usize,
        steps: &[(String, Vec<String>)],
        index: &HashMap<&str, usize>,
        state: &mut [u8],
        path: &mut Vec<usize>,
    ) -> Option<Vec<String>> {
        state[i] = 1;
        path.push(i);
        for need in &steps[i].1 {
            let Some(&j) = index.get(need.as_str()) else {
                continue;
            };
            if state[j] == 1 {
                let start = path.iter().position(|&p| p == j).unwrap_or(0);
                let mut cycle: Vec<String> =
                    path[start..].iter().map(|&p| steps[p].0.clone()).collect();
                cycle.push(steps[j].0.clone());
                return Some(cycle);
            }
            if state[j] == 0
                && let Some(cycle) = visit(j, steps, index, state, path)
            {
                return Some(cycle);
            }
        }
        path.pop();
        state[i] = 2;
        None
    }
    (0..steps.len()).find_map(|i| {
        if state[i] == 0 {
            visit(i, steps, &index, &mut state, &mut path)
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(edges: &[(&str, &[&str])]) -> Vec<(String, Vec<String>)> {
        edges
            .iter()
            .map(|(id, needs)| {
                (
                    id.to_string(),
                    needs.iter().map(|n| n.to_string()).collect(),
                )
            })
            .collect()
    }

    #[test]
    fn stages_follow_needs() {
        let g = graph(&[
            ("ready", &[]),
            ("db", &["ready"]),
            ("media", &[]),
            ("offsite", &["db", "media"]),
        ]);
        assert_eq!(stages(&g).unwrap(), vec![vec![0, 2], vec![1], vec![3]]);
    }

    #[test]
    fn cycles_are_named() {
        let g = graph(&[("a", &["c"]), ("b", &["a"]), ("c", &["b"])]);
        assert_eq!(find_cycle(&g).unwrap(), vec!["a", "c", "b", "a"]);
    }
}
