// The characters `hardneg data build-glyphs` may draw its classes from, one list per script. A
// class is a character, its samples the same character in many fonts, so two classes must never be
// the same shape under two code points: letters that look like a letter of another script in
// ordinary fonts (Latin A, Greek Α, Cyrillic А), or like another letter of their own script
// (Latin I and l in sans-serif fonts), are left out here, each exclusion with its reason below.
// Which of these characters a build uses depends on the fonts installed: src/data/glyphs.ts keeps a
// character only when enough distinct fonts draw it.

export interface GlyphScript {
  /** Used in class folder names (`<name>_U+XXXX`) and in --scripts. */
  name: string;
  /** What the name stands for, in the built set's README. */
  title: string;
  /** Candidate characters, one code point each. */
  chars: string;
}

/** Latin capitals and small letters. Left out: I and l (one vertical stroke in sans-serif fonts). */
const LATIN = 'ABCDEFGHJKLMNOPQRSTUVWXYZ' + 'abcdefghijkmnopqrstuvwxyz';

/**
 * Greek letters that no Latin or Cyrillic letter imitates. Left out: the capitals Α Β Ε Ζ Η Ι Κ Μ Ν
 * Ο Ρ Τ Υ Χ (Latin look-alikes); ο (o), ι (ı), κ (Cyrillic к), ν (v), υ (u), χ (x), ρ (p in
 * sans-serif), τ (Cyrillic т).
 */
const GREEK = 'ΓΔΘΛΞΠΣΦΨΩ' + 'αβγδεζηθλμξπσςφψω';

/**
 * Cyrillic letters that are not Latin or Greek shapes. Left out: А В Е К М Н О Р С Т Х Ё Ї а е о р
 * с у х ё ї (Latin look-alikes), Г П Ф Л (Greek Γ Π Φ Λ), к п ф (Greek κ π φ), є (Greek ε).
 */
const CYRILLIC = 'БДЖЗИЙЦЧШЩЪЫЬЭЮЯ' + 'бвгджзийлмнтцчшщъыьэюя' + 'ЂђЋћЉљЊњЏџЄҐґЎў';

/** The 22 Hebrew letters and the 5 final forms. */
const HEBREW = 'אבגדהוזחטיכךלמםנןסעפףצץקרשת';

/**
 * Arabic letters in their isolated form (the form a font maps the code point to), and the Persian
 * پ چ ژ گ. Left out: ی (its isolated form is ى), ة (ه with two dots), the digits.
 */
const ARABIC = 'ابتثجحخدذرزسشصضطظعغفقكلمنهوي' + 'پچژگ';

/** Devanagari independent vowels and consonants. */
const DEVANAGARI = 'अआइईउऊऋएऐओऔ' + 'कखगघङचछजझञटठडढणतथदधनपफबभमयरलवशषसह';

/** Thai consonants. Left out: ฃ ฅ (obsolete, nearly ข ค), ฤ ฦ (vowel letters close to ถ ภ). */
const THAI = 'กขคฆงจฉชซฌญฎฏฐฑฒณดตถทธนบปผฝพฟภมยรลวศษสหฬอฮ';

/** Frequent Hangul syllables (all in KS X 1001, which every Korean font covers). */
const HANGUL =
  '가각간갈감강개거건걸것게겠결경계고공과관광교구국군권그근글금기길김까나난날남내너넣네년노논놓누는늘니다단달담당대더덕데도독동되된될두둘드든들등디따때또' +
  '라란람랑래러런려력련로론료루류르른를름리린마만많말맞매머먹면명모목몸못무문물미민바박반받발방배백번법변별보복본부북분불비사산살상새생서선설성세소속손수순술' +
  '스습시식신실심십아안않알앞애야약양어언얼없었에여역연열영예오온와완왜외요용우운울원월위유육으은을음의이인일임입있자작잘장재저적전절점정제조족존종주죽준중즈증' +
  '지직진질집짜차참창책처천청체초최추출치친카크큰타태터토통트특파편평포표프피하학한할함합항해했행향허현형호화확환활회후히힘';

/**
 * Hiragana and katakana. Left out: へ ヘ (the same shape), り リ (nearly), and the katakana that are
 * kanji shapes: カ (力), タ (夕), ト (卜), ニ (二), ハ (八), ロ (口), エ (工), チ (千).
 */
const KANA =
  'あいうえおかきくけこさしすせそたちつてとなにぬねのはひふほまみむめもやゆよらるれろわをん' +
  'アイウオキクケコサシスセソツテナヌネノヒフホマミムメモヤユヨラルレワヲン';

/**
 * Frequent Han characters (Chinese frequency order). Many exist only in simplified, traditional or
 * Japanese form and are drawn by fewer fonts; the build keeps those that enough fonts draw. Left
 * out: pairs that differ by one stroke's length (已 of 己, 士 of 土, 末 of 未, 入 of 人) and the
 * kanji that katakana copy (又 of ヌ, 才 of オ).
 */
const HAN =
  '的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年得就那要下以生会自着去之过家学对可她里后小么心多天而能好都然没日于起还发成事只作当想看文无' +
  '开手十用主行方如前所本见经头面公同三老从动两长知民样现分将外但身些与高意进把法此实回二理美点月明其种声全工己话儿者向情部正名定女问力机给等几很业最间新' +
  '什打便位因重被走电四第门相次东政海口使教西再平真听世气信北少关并内加化由却代军产先山五太水万市眼体别处总场师书比住员九笑性通目华报立马命张活难神数件' +
  '安表原车白应路期叫死常提感金何更反合放做系计或司利受光王果亲界及今京务制解各任至清物台象记边共风战干接它许八特觉望直服毛林题建南度统色字请交爱让认算论' +
  '百吃义科怎元社术结六功指思非流每青管夫连远资队跟带花快条院变联言权往展该领传近留红治决周保达办运武半候七必城父强步完革深区即求品转量空甚众技轻程告江语' +
  '英基派满式李息写呢识极令黄德收脸钱党倒未持取设始版双历越史商千片容研像找友孩站广改议形委早房音火际则首单据导影失拿网香似斯专石若兵弟谁校读志飞观争究包' +
  '组造落视济喜离虽坐集编宝谈府拉黑且随格尽剑讲布杀微怕母调局根曾准团段终乐切级克精哪官示冷域读河木雨花鱼鸟云竹羊牛米田川土耳舌足走车舟衣巾皮骨角';

/** Every script, in the order classes are dealt from them. */
export const GLYPH_SCRIPTS: readonly GlyphScript[] = [
  { name: 'latin', title: 'Latin', chars: LATIN },
  { name: 'greek', title: 'Greek', chars: GREEK },
  { name: 'cyrillic', title: 'Cyrillic', chars: CYRILLIC },
  { name: 'hebrew', title: 'Hebrew', chars: HEBREW },
  { name: 'arabic', title: 'Arabic (isolated forms)', chars: ARABIC },
  { name: 'devanagari', title: 'Devanagari', chars: DEVANAGARI },
  { name: 'thai', title: 'Thai', chars: THAI },
  { name: 'hangul', title: 'Hangul syllables', chars: HANGUL },
  { name: 'kana', title: 'Japanese kana', chars: KANA },
  { name: 'han', title: 'Han (CJK ideographs)', chars: HAN },
];

export const GLYPH_SCRIPT_NAMES: readonly string[] = GLYPH_SCRIPTS.map((s) => s.name);

/** The code points of a script's candidates, each once, in list order. */
export function scriptCodePoints(script: GlyphScript): number[] {
  const seen = new Set<number>();
  for (const ch of script.chars) seen.add(ch.codePointAt(0) as number);
  return [...seen];
}
