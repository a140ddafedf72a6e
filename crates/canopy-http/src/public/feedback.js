// Canopy feedback widget. Embed:
// <script src="https://YOUR-CANOPY/widget/feedback.js" data-project="SLUG" data-position="bottom-right" data-color="#3b5bdb" async></script>
(function () {
  var me = document.currentScript;
  if (!me) return;
  var project = me.getAttribute('data-project');
  if (!project) { console.warn('canopy feedback: data-project is required'); return; }
  var base = new URL(me.src).origin;
  var color = me.getAttribute('data-color') || '#3b5bdb';
  var pos = (me.getAttribute('data-position') || 'bottom-right').split('-');
  var box = document.createElement('div');
  box.style.cssText = 'position:fixed;z-index:2147483647;font:14px system-ui,sans-serif;' + pos[0] + ':16px;' + (pos[1] || 'right') + ':16px';
  var btn = document.createElement('button');
  btn.type = 'button';
  btn.textContent = 'Feedback';
  btn.style.cssText = 'background:' + color + ';color:#fff;border:0;border-radius:20px;padding:8px 16px;cursor:pointer';
  var form = document.createElement('form');
  form.style.cssText = 'display:none;background:#fff;border:1px solid #ddd;border-radius:8px;padding:12px;margin-bottom:8px;width:280px;box-shadow:0 4px 16px rgba(0,0,0,.15)';
  form.innerHTML = '<select name="type" style="width:100%;margin-bottom:6px"><option value="general">General</option><option value="bug">Bug</option>' +
    '<option value="feature">Feature request</option><option value="question">Question</option></select>' +
    '<textarea name="body" required rows="4" placeholder="Your feedback" style="width:100%;box-sizing:border-box"></textarea>' +
    '<input name="user_email" type="email" placeholder="Email (optional)" style="width:100%;box-sizing:border-box;margin:6px 0">' +
    '<button type="submit" style="background:' + color + ';color:#fff;border:0;border-radius:4px;padding:6px 12px">Send</button> <span class="msg"></span>';
  var msg = form.querySelector('.msg');
  btn.onclick = function () { form.style.display = form.style.display === 'none' ? 'block' : 'none'; };
  form.onsubmit = function (e) {
    e.preventDefault();
    var data = { type: form.type.value, body: form.body.value, page_url: location.href };
    if (form.user_email.value) data.user_email = form.user_email.value;
    fetch(base + '/public/' + encodeURIComponent(project) + '/feedback', {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(data)
    }).then(function (r) {
      if (r.ok) { msg.textContent = 'Thank you!'; form.body.value = ''; }
      else return r.json().then(function (j) { msg.textContent = (j.error && j.error.message) || 'Could not send.'; });
    }).catch(function () { msg.textContent = 'Could not send.'; });
  };
  box.appendChild(form);
  box.appendChild(btn);
  (document.body || document.documentElement).appendChild(box);
})();
