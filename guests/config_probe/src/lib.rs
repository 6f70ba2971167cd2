//! Reads wasi:config through both of its versions (rc.1 and Spin's draft).

wit_bindgen::generate!({ path: "../../wit/config", world: "config-probe", generate_all });

use exports::membrane_test::config::probe::Guest;

struct Probe;

impl Guest for Probe {
    fn get(key: String) -> Result<Option<String>, String> {
        wasi::config0_2_0_rc_1::store::get(&key).map_err(|e| format!("{e:?}"))
    }

    fn get_all() -> Result<Vec<(String, String)>, String> {
        let mut all = wasi::config0_2_0_rc_1::store::get_all().map_err(|e| format!("{e:?}"))?;
        all.sort();
        Ok(all)
    }

    fn get_draft(key: String) -> Result<Option<String>, String> {
        wasi::config0_2_0_draft_2024_09_27::store::get(&key).map_err(|e| format!("{e:?}"))
    }

    fn get_all_draft() -> Result<Vec<(String, String)>, String> {
        let mut all =
            wasi::config0_2_0_draft_2024_09_27::store::get_all().map_err(|e| format!("{e:?}"))?;
        all.sort();
        Ok(all)
    }
}

export!(Probe);
