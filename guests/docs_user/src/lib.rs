//! Uses resources implemented by the host: constructors, methods, static functions, own and
//! borrow parameters, and handles it should not be able to use.

use std::cell::RefCell;

wit_bindgen::generate!({ path: "../../wit/docs", world: "docs-user" });

use exports::membrane_test::docs::run::Guest;
use membrane_test::docs::store::{Document, Tally, close, length};

thread_local! {
    static KEPT: RefCell<Vec<Document>> = const { RefCell::new(Vec::new()) };
}

struct User;

impl Guest for User {
    fn roundtrip(start: String, more: String) -> String {
        let doc = Document::new(&start);
        doc.append(&more);
        doc.text()
    }

    fn cycle(name: String) -> (u32, String) {
        let doc = Document::open(&name);
        let n = length(&doc);
        (n, close(doc))
    }

    fn hoard(n: u32) -> u32 {
        KEPT.with(|k| {
            let mut k = k.borrow_mut();
            for i in 0..n {
                k.push(Document::new(&i.to_string()));
            }
            k.len() as u32
        })
    }

    fn release() -> u32 {
        KEPT.with(|k| {
            let mut k = k.borrow_mut();
            let n = k.len() as u32;
            k.clear();
            n
        })
    }

    fn forge(handle: u32) -> String {
        // SAFETY: deliberately unsound; the runtime must refuse the handle.
        let doc = unsafe { Document::from_handle(handle) };
        doc.text()
    }

    fn confuse() -> String {
        let tally = Tally::new();
        tally.bump();
        // SAFETY: deliberately unsound; the runtime must refuse a tally used as a document.
        let doc = unsafe { Document::from_handle(tally.take_handle()) };
        doc.text()
    }

    fn leak_handle() -> u32 {
        let doc = Document::new("secret");
        let h = doc.handle();
        KEPT.with(|k| k.borrow_mut().push(doc));
        h
    }
}

export!(User);
