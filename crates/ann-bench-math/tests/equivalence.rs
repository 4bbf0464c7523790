//! The table of equivalent and non-equivalent answer pairs, each row through one `check` helper.

use ann_bench_math::is_equiv;

/// `a` and `b` must be equivalent iff `equal`, in both orders.
fn check(a: &str, b: &str, equal: bool, rule: &str) -> Result<(), String> {
    let ab = is_equiv(a, b);
    let ba = is_equiv(b, a);
    if ab == equal && ba == equal {
        Ok(())
    } else {
        let na = ann_bench_math::normalize_answer(a);
        let nb = ann_bench_math::normalize_answer(b);
        Err(format!("[{rule}] {a:?} vs {b:?}: expected {equal}, got {ab}/{ba} (keys {:?} / {:?})", na.key(), nb.key()))
    }
}

const EQ: bool = true;
const NE: bool = false;

#[rustfmt::skip]
const TABLE: &[(&str, &str, bool, &str)] = &[
    // Fractions and their spellings.
    ("\\frac{1}{2}", "\\dfrac{1}{2}", EQ, "dfrac"),
    ("\\tfrac{3}{4}", "\\frac34", EQ, "tfrac, short frac"),
    ("\\frac 59", "\\frac{5}{9}", EQ, "frac with spaces"),
    ("\\frac9{19}", "\\frac{9}{19}", EQ, "half-braced frac"),
    ("3/4", "\\frac{3}{4}", EQ, "a/b"),
    ("\\frac{2}{4}", "\\frac{1}{2}", EQ, "unreduced fraction"),
    ("-\\frac{3}{8}", "\\frac{-3}{8}", EQ, "sign placement"),
    ("\\frac{3}{8}", "-\\frac{3}{8}", NE, "sign matters"),
    ("1\\frac{4}{5}", "\\frac{9}{5}", EQ, "mixed number"),
    ("137 \\frac{1}{2}", "137.5", EQ, "mixed number with space"),
    ("\\frac{4}{5}", "1\\frac{4}{5}", NE, "mixed number is not a product"),
    // Exact decimals, never a tolerance.
    ("0.5", "\\frac{1}{2}", EQ, "decimal = fraction"),
    ("0.5", ".5", EQ, "leading zero"),
    ("10", "10.0", EQ, "trailing .0"),
    ("10", "10.00", EQ, "trailing zeros"),
    ("1.25", "\\frac{5}{4}", EQ, "decimal = fraction"),
    ("0.333", "\\frac{1}{3}", NE, "rounded decimal is not the fraction"),
    ("0.3333333333", "1/3", NE, "many digits still not 1/3"),
    ("3.14", "\\pi", NE, "no tolerance for pi"),
    ("1.414", "\\sqrt{2}", NE, "no tolerance for roots"),
    ("2.5", "2.50001", NE, "close is not equal"),
    (".0000672", "6.72 \\times 10^{-5}", EQ, "scientific notation"),
    // Thousands separators.
    ("1,000", "1000", EQ, "thousands comma"),
    ("10,\\!080", "10080", EQ, "MATH thousands \\!"),
    ("11,\\! 111,\\! 111,\\! 100", "11111111100", EQ, "MATH thousands with spaces"),
    ("1{,}000", "1000", EQ, "braced thousands comma"),
    ("58,500", "58500", EQ, "thousands"),
    ("\\$32,\\!348", "32348", EQ, "dollars and thousands"),
    // Answer lists, unordered.
    ("1, 2", "2, 1", EQ, "unordered list"),
    ("1,-2", "-2, 1", EQ, "unordered list with negatives"),
    ("3, 5, 7", "7,3,5", EQ, "three items"),
    ("1, 2", "1, 2, 3", NE, "different lengths"),
    ("1, 1, 2", "1, 2, 2", NE, "multiplicities count"),
    ("\\{1, 2\\}", "2, 1", EQ, "set braces"),
    ("1 \\pm \\sqrt{19}", "1 + \\sqrt{19}, 1 - \\sqrt{19}", EQ, "plus-minus expands"),
    ("3 \\pm 2\\sqrt{2}", "3-2\\sqrt2, 3+2\\sqrt2", EQ, "plus-minus, unordered"),
    ("\\{1\\pm\\sqrt{5},-2\\}", "-2, 1+\\sqrt5, 1-\\sqrt5", EQ, "set with plus-minus"),
    ("2 \\text{ and } 3", "2, 3", EQ, "'and' list"),
    ("2, 3, \\text{ and } 4", "4, 3, 2", EQ, "'and' after a comma"),
    ("x = 1, x = 2", "2, 1", EQ, "list of assignments"),
    // Tuples and intervals.
    ("(1,2)", "(1, 2)", EQ, "tuple spacing"),
    ("(1,2)", "(2,1)", NE, "tuple order matters"),
    ("(1,2]", "(1,2)", NE, "closing bracket matters"),
    ("[1,2)", "(1,2)", NE, "opening bracket matters"),
    ("\\left( 3, \\frac{\\pi}{2} \\right)", "(3,\\frac{\\pi}2)", EQ, "tuple with \\left \\right"),
    ("(6,31,-1)", "(6, 31, -1)", EQ, "triple"),
    ("(0.5, 2)", "(\\frac12, 2)", EQ, "tuple elements by value"),
    ("(-\\infty, 0]", "(-\\infty,0]", EQ, "infinite interval"),
    ("(0,9) \\cup (9,36)", "(9,36)\\cup(0,9)", EQ, "union is unordered"),
    ("(0,9) \\cup (9,36)", "(0,9] \\cup (9,36)", NE, "union brackets matter"),
    ("x \\in [-2,7]", "[-2,7]", EQ, "membership"),
    ("\\left(\\frac{3}{5},\\frac{8}{3}\\right]", "(0.6, \\frac83]", EQ, "interval by value"),
    ("(0,100)", "(0, 100)", EQ, "no thousands inside brackets"),
    // Equations and assignments.
    ("x = 3", "3", EQ, "x = 3 vs 3"),
    ("x=5", "5", EQ, "no spaces"),
    ("k = 3", "4", NE, "wrong value"),
    ("y = 2x + 3", "y = 3 + 2x", EQ, "equation, reordered side"),
    ("y = 2x + 3", "2x + 3 = y", EQ, "equation, swapped sides"),
    ("5x - 7y + 11z + 4 = 0", "5x - 7y + 11z = -4", EQ, "equation moved terms"),
    ("5x - 7y + 11z + 4 = 0", "10x - 14y + 22z + 8 = 0", NE, "plane equation scaled is not the required form"),
    // Radicals, pi, complex numbers, products.
    ("\\frac{\\sqrt{3}}{2}", "\\frac{\\sqrt3}{2}", EQ, "\\sqrt3"),
    ("\\sqrt2", "\\sqrt{2}", EQ, "\\sqrt2"),
    ("11\\sqrt2", "11 \\sqrt{2}", EQ, "coefficient of root"),
    ("\\sqrt{12}", "2\\sqrt{3}", EQ, "simplified root"),
    ("\\frac{1}{\\sqrt{3}}", "\\frac{\\sqrt{3}}{3}", EQ, "rationalised denominator"),
    ("\\frac{\\sqrt{3}}{2}", "\\frac{1}{2}\\sqrt{3}", EQ, "coefficient placement"),
    ("2 \\cdot 3", "6", EQ, "\\cdot product"),
    ("2^4 \\times 3", "48", EQ, "\\times product"),
    ("16 \\cdot \\sqrt{3}", "16\\sqrt3", EQ, "\\cdot with root"),
    ("3 \\times 10^5", "300,000", EQ, "power of ten"),
    ("288 \\pi", "288\\pi", EQ, "pi"),
    ("\\pi \\cdot 288", "288\\pi", EQ, "commuted pi"),
    ("7\\pi", "8\\pi", NE, "wrong multiple"),
    ("6 - 5i", "-5i + 6", EQ, "complex, reordered"),
    ("1+2i", "1-2i", NE, "conjugate is different"),
    ("3\\sqrt{5}", "\\sqrt{45}", EQ, "root of 45"),
    ("\\sqrt{5}", "5^{1/2}", EQ, "fractional power"),
    // Polynomials: order-free, but factored vs expanded stays distinct.
    ("x^3+3x-6", "3x + x^3 - 6", EQ, "polynomial order"),
    ("(a+5)(b+2)", "(b+2)(a+5)", EQ, "factors commute"),
    ("(a+5)(b+2)", "ab+2a+5b+10", NE, "factored vs expanded"),
    ("p - q", "-q + p", EQ, "difference"),
    ("p - q", "q - p", NE, "difference reversed"),
    ("\\frac{11+9a}{20}", "\\frac{9a+11}{20}", EQ, "numerator order"),
    // Degrees, units, text, money, percent.
    ("90^\\circ", "90", EQ, "degree sign"),
    ("90^{\\circ}", "90", EQ, "braced degree"),
    ("\\frac{270}7\\text{ degrees}", "\\frac{270}{7}", EQ, "text degrees"),
    ("864 \\mbox{ inches}^2", "864", EQ, "mbox unit squared"),
    ("5.4 \\text{ cents}", "5.4", EQ, "text unit"),
    ("15\\mbox{ cm}^2", "15", EQ, "cm^2"),
    ("\\$18.90", "18.9", EQ, "dollar sign"),
    ("25\\%", "25", EQ, "percent sign"),
    ("\\text{Evelyn}", "Evelyn", EQ, "text answer"),
    ("\\text{east}", "East", EQ, "text case"),
    ("\\text{even}", "odd", NE, "different words"),
    ("\\text{(C)}", "C", EQ, "multiple choice"),
    ("(C)", "(B)", NE, "different choice"),
    // Bases, matrices, misc.
    ("52_8", "52_{8}", EQ, "base subscript braces"),
    ("52_8", "52", EQ, "base digits without subscript"),
    ("52_8", "42", NE, "decimal value of a base-8 numeral is not accepted"),
    ("\\begin{pmatrix} -1/3 \\\\ 2/3 \\\\ 5/3 \\end{pmatrix}", "\\begin{pmatrix} -\\frac13 \\\\ \\frac23 \\\\ \\frac53 \\end{pmatrix}", EQ, "vector by value"),
    ("\\begin{pmatrix} -2 \\\\ -14 \\\\ -7 \\end{pmatrix}", "(-2,-14,-7)", EQ, "column vector as tuple"),
    ("\\begin{pmatrix} -1 & 0 \\\\ 0 & -1 \\end{pmatrix}", "\\begin{pmatrix} -1 & 0 \\\\ 0 & 1 \\end{pmatrix}", NE, "matrix entry differs"),
    ("\\cot x", "\\cot(x)", EQ, "function argument"),
    ("\\sin^2 x", "(\\sin x)^2", EQ, "function power"),
    ("\\binom{5}{2}", "10", EQ, "binomial"),
    ("2k+2", "2(k+1)", EQ, "constant factored out"),
    ("-13x+3", "3 - 13x", EQ, "linear order"),
    ("x < 3", "x<3", EQ, "relation spacing"),
    ("x < 3", "x > 3", NE, "different relation"),
    ("x > 2", "(2, \\infty)", EQ, "inequality as interval"),
    ("x \\ge 2", "[2, \\infty)", EQ, "non-strict inequality"),
    ("x \\geq 2", "(2, \\infty)", NE, "closed is not open"),
    ("-2 \\le x \\le 7", "x \\in [-2,7]", EQ, "double inequality"),
    ("7 > x > -2", "(-2, 7)", EQ, "reversed double inequality"),
    ("x \\leq 0", "(-\\infty, 0]", EQ, "upper bound only"),
    ("3 < x", "x > 3", EQ, "variable on the right"),
    ("", "0", NE, "empty answer"),
    ("\u{2212}3", "-3", EQ, "Unicode minus"),
    ("2\u{03c0}", "2\\pi", EQ, "Unicode pi"),
    ("3\u{221a}2", "3\\sqrt{2}", EQ, "Unicode root"),
    // Traps for a parser that is too eager.
    ("10\\,000", "10000", EQ, "thin-space thousands"),
    ("10 000", "0", NE, "two numbers are not a product"),
    ("10 000", "10000", EQ, "space as thousands separator"),
    ("2 3", "23", NE, "a space between digits is not nothing"),
    ("\\frac{x^2-1}{x-1}", "x+1", NE, "no polynomial division (documented)"),
    ("3 ab", "3 cd", NE, "a trailing variable product is not a unit"),
    ("5 \\text{ cm}", "5 \\text{ m}", NE, "units differ on both sides (Hendrycks dropped them)"),
    ("\\sqrt[3]{16}", "2\\sqrt[3]{2}", EQ, "cube root simplified"),
    ("16^{1/3}", "2\\sqrt[3]{2}", EQ, "fractional power as root"),
    ("(0,1) U (2,3)", "(0,1) \\cup (2,3)", EQ, "letter U as union"),
    ("\\text{no}", "No", EQ, "word answer"),
    ("(x+1)^2", "x^2+2x+1", NE, "square of a sum is factored"),
    ("x^2+7x+10", "(x+2)(x+5)", NE, "expansion is not the factorisation"),
    ("\\sqrt[3]{2}\\sqrt[3]{4}", "2", NE, "products of cube roots are not simplified (documented)"),
    ("2^{4950}", "2^{4950}", EQ, "big power"),
    ("2^{4950}", "2^{4951}/2", EQ, "big power by value"),
    ("\\frac{1}{2004!}", "\\frac{1}{2004 \\cdot 2003!}", EQ, "factorials"),
    ("-37_8", "-37_{8}", EQ, "negative base numeral"),
    ("\\cfrac{25}{16}", "1.5625", EQ, "cfrac"),
    ("\\frac{x+1}{x-1}", "\\frac{1+x}{-1+x}", EQ, "rational function"),
    ("(x+y+z+w+1)^{60} + 1", "1 + (1+w+x+y+z)^{60}", NE, "huge expansion refused: compared as strings"),

];

#[test]
fn equivalence_table() {
    assert!(TABLE.len() >= 60, "the table has {} rows", TABLE.len());
    let failures: Vec<String> = TABLE.iter().filter_map(|(a, b, eq, rule)| check(a, b, *eq, rule).err()).collect();
    assert!(failures.is_empty(), "{} of {} rows failed:\n{}", failures.len(), TABLE.len(), failures.join("\n"));
}

/// Model output is data: hostile or truncated answers never panic and never match a real answer.
#[test]
fn hostile_answers_do_not_panic() {
    let hostile = [
        "x^{-9223372036854775808}",
        "x^{9223372036854775807}",
        "\\sqrt[100000]{3}",
        "((((((x^{4096})^{4096})^{4096})^{4096})^{4096})^{4096})",
        "\\frac{1}{0}",
        "0^{-1}",
        "\\sqrt{0}",
        "10^{10^{10}}",
        "(3^{4096})^{4096}",
        "9999999999999999999!",
        "\\binom{100000}{50000}",
        "\\boxed{",
        "}}}}{{{{",
        "\\\\\\",
        "\\frac{\\frac{\\frac{1}{2}",
        "\\sqrt[0]{2}",
        "\\sqrt{-0}",
        "((((((((((((((((((((1))))))))))))))))))))",
        "\\begin{pmatrix}\\end{pmatrix}",
        "(,)",
        ",,,",
        "=",
        "x==3",
        "\\pm",
        "_",
        "^",
        "1_",
        "é½∑",
    ];
    for h in hostile {
        for gold in ["0", "1", "x", "(1,2)"] {
            let _ = check(h, gold, is_equiv(h, gold), "no panic");
        }
        assert!(!is_equiv(h, "42"), "{h:?} matched 42");
    }
}

/// Every slice of real solution text (the kind of thing a model puts in a box) is handled without a
/// panic, and extraction from the full solution finds the gold answer.
#[test]
fn slices_of_solutions_do_not_panic() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../datasets/math/math-train-sample.jsonl");
    let problems = ann_bench_math::load_math_train(&path).unwrap();
    let mut calls = 0;
    for p in &problems {
        let chars: Vec<char> = p.solution.chars().collect();
        for start in (0..chars.len()).step_by(5) {
            for len in [1, 2, 3, 5, 8, 13, 21, 34] {
                let slice: String = chars[start..(start + len).min(chars.len())].iter().collect();
                let _ = is_equiv(&slice, &p.answer);
                calls += 1;
            }
        }
        let found = ann_bench_math::extract(&p.solution).map(|e| e.answer);
        assert!(found.is_some_and(|a| is_equiv(&a, &p.answer)), "{}", p.id);
    }
    assert!(calls > 10_000, "{calls}");
}

/// Units count when both sides carry one (same after case, spaces and a plural `s`), and are
/// ignored when only one does.
#[test]
fn units_are_compared_when_both_sides_carry_one() {
    let rows: &[(&str, &str, bool)] = &[
        ("2\\text{ hours}", "2\\text{ minutes}", NE),
        ("2\\text{ hours}", "2\\,\\text{hrs}", NE),
        ("5 cm", "5\\text{ m}", NE),
        ("3\\text{ inches}", "3\\text{ inches}^2", NE),
        ("2\\text{ hours}", "3\\text{ hours}", NE),
        ("2\\text{ hours}", "2\\text{ Hour}", EQ),
        ("2\\text{hours}", "2\\mbox{ hours}", EQ),
        ("864 \\mbox{ inches}^2", "864\\text{ inch}^{2}", EQ),
        ("5 cm", "5\\text{ cm}", EQ),
        ("2", "2\\text{ hours}", EQ),
        ("\\frac{1}{2}", "0.5\\text{ hours}", EQ),
    ];
    let failures: Vec<String> = rows.iter().filter_map(|(a, b, eq)| check(a, b, *eq, "units").err()).collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
